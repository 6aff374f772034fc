# finetune_20min.py shortened to 500 iterations (the classification rows of
# docs/benchmarks.md: an image-level label learns in fewer steps than boxes
# or masks): 20 warm-up iterations, cosine to 1 % over the 500; the
# 20-minute TimeBudgetHook still applies.
_base_ = ['./finetune_20min.py']
max_iters = 500
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters,
         eta_min_ratio=0.01),
]
