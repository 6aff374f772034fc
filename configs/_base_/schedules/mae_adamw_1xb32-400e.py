# The MAE / FCMAE pretraining recipe for batch 32 (He et al. 2021; ConvNeXt
# V2): AdamW, lr 1.5e-4 x batch / 256, betas (0.9, 0.95), weight decay 0.05
# except norms, biases, position embeddings and tokens; 40 warm-up epochs,
# then cosine to 0 at epoch 400.
optim_wrapper = dict(
    type='OptimWrapper',
    # fused: one kernel updates every parameter (docs/benchmarks.md)
    optimizer=dict(type='AdamW', lr=1.5e-4 * 32 / 256, betas=(0.9, 0.95),
                   weight_decay=0.05, fused=True),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0),
                     'cls_token': dict(decay_mult=0.0),
                     'mask_token': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=40, end=400,
         eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)

