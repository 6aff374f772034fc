# A short AdamW schedule for smoke runs: 3 epochs, cosine decay.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
)
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, T_max=3, eta_min=1e-5),
]
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
val_cfg = dict()
test_cfg = dict()
