# Fine-tuning on a real dataset for 40k iterations (mmsegmentation's "40k"):
# AdamW with layer-wise lr decay (ConvNeXt by block, as
# finetune_detection.py), 1500 warm-up iterations, cosine to 1%, gradient
# clipping, validation and checkpoints every 4000 iterations.
_base_ = ['../default_runtime.py']
max_iters = 40000

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999),
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
         end=1500),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=1500,
         end=max_iters, eta_min_ratio=0.01),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000,
                    save_last=True, max_keep_ckpts=3, save_best='auto'))
log_processor = dict(by_epoch=False)
