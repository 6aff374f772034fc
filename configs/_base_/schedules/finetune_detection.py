# Fine-tuning a (masked-)pretrained backbone into a detector: AdamW with
# layer-wise lr decay (BEiT / MAE / ConvNeXt fine-tuning; ViTDet uses 0.7
# for ViT-B), no weight decay on norms, biases, 1-D parameters, position
# embedding and class token; one warm-up epoch, then cosine to 1% of each
# group's rate; gradient clipping; EMA of the weights (validation, the saved
# checkpoints and `perception test` use the averaged weights); early
# stopping on the validation AP.
#
# The backbone is found under `backbone.` (the Detector's); embeddings get
# lr * 0.75 ** (depth + 1), block i lr * 0.75 ** (depth - i), neck and head
# lr. ConvNeXt: `layer_decay_type='block'` (one id per block) or 'stage'.
# Frozen parameters (the backbone's `frozen_stages`, `freeze_norm`, `lora`)
# are not handed to the optimizer.
#
# In a detection config:
#   max_epochs = 36
#   train_cfg = dict(max_epochs=max_epochs)
#   param_scheduler = [_base_.param_scheduler[0],
#                      dict(_base_.param_scheduler[1], end=max_epochs)]
#   custom_hooks = [_base_.ema_hook,
#                   dict(_base_.early_stopping_hook, monitor='coco/AP50'),
#                   dict(type='MixSwitchHook', ...)]   # a list replaces ours
# and from masked pretraining, on the backbone:
#   init_cfg=dict(type='Pretrained', checkpoint='work_dirs/mae_...')  # a work
#   dir, a checkpoint or an export-backbone folder
# Linear probe: backbone frozen_stages='all'; LoRA: backbone lora=dict(rank=8).
max_epochs = 24

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
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         eta_min_ratio=0.01, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Momentum max(2e-4, 100 / (100 + step)): follows the weights closely early
# on (short CPU runs), averages over more steps as training goes on.
ema_hook = dict(type='EMAHook', ema_type='MomentumAnnealingEMA',
                momentum=2e-4, gamma=100, update_buffers=True)
# strict: a monitor the evaluator does not report is an error, not a skip.
early_stopping_hook = dict(type='EarlyStoppingHook', monitor='coco/AP',
                           rule='greater', min_delta=0.002, patience=5,
                           strict=True)
custom_hooks = [ema_hook, early_stopping_hook]
