# Fine-tuning for a wall-clock budget (the scratch vs. pretrained studies of
# docs/benchmarks.md: at most 20 minutes a run): AdamW with layer-wise lr
# decay (as finetune_detection.py: embeddings and early blocks of a
# (masked-)pretrained backbone move least), 20 warm-up iterations, cosine to
# 1% over max_iters, gradient clipping; TimeBudgetHook stops at 20 minutes
# and saves. Iteration-based: checkpoints and validation at the end. It
# brings the runtime defaults along (its checkpoint and log settings are
# iteration-based).
_base_ = ['../default_runtime.py']
max_iters = 1000

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        layer_decay_type='block',
        # decay a pretrained backbone only: a scratch one (no Pretrained
        # init_cfg) trains every block at the full rate
        layer_decay_scope='pretrained',
        backbone_prefix='backbone.',
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0),
                     'cls_token': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=10.0, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters,
         eta_min_ratio=0.01),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=250,
                    save_last=True, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='TimeBudgetHook', minutes=20)]
