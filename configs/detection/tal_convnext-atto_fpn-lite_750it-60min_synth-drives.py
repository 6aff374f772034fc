# Road objects on generated drives, ConvNeXt-Atto from scratch with the
# light FPN and BatchNorm head (tal_convnext-atto_fpn-lite_24e_bdd100k.py),
# at the drives' own 640x360 (padded to 640x384), at most 750 iterations
# of batch 8 (about 4.8 s each on 2 quiet cores) or 60 minutes of wall
# clock, whichever comes first:
# a row of the detection study in docs/benchmarks.md. Same data as
# tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py; make the drives
# (exact list in docs/benchmarks.md), then:
#
#   perception train configs/detection/tal_convnext-atto_fpn-lite_750it-60min_synth-drives.py
#   perception test configs/detection/tal_convnext-atto_fpn-lite_750it-60min_synth-drives.py \
#       work_dirs/tal_convnext-atto_fpn-lite_750it-60min_synth-drives --show-dir pictures/
_base_ = [
    '../_base_/models/det_convnext-atto_fpn.py',
    '../_base_/datasets/synth_drives_kitti.py',
    '../_base_/schedules/finetune_detection.py',
    '../_base_/default_runtime.py',
]
model = dict(
    neck=dict(out_channels=64, norm='BN'),
    head=dict(in_channels=64, feat_channels=64, use_depthwise=True,
              share_levels=False, norm_cfg=dict(type='BN')),
)
input_scale = (640, 360)  # the base's pipelines, at the drives' own size


def _at_input_scale(pipeline):
    return [dict(step, scale=input_scale) if step['type'] == 'Resize'
            else step for step in pipeline]


train_pipeline = _at_input_scale(_base_.train_pipeline)
test_pipeline = _at_input_scale(_base_.test_pipeline)
max_iters = 750
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=30, end=max_iters,
         eta_min_ratio=0.01),
]
train_dataloader = dict(
    num_workers=1, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(datasets=[dict(d, pipeline=train_pipeline) for d in
                           _base_.train_dataloader.dataset.datasets]))
val_dataloader = dict(
    dataset=dict(datasets=[dict(d, pipeline=test_pipeline) for d in
                           _base_.val_dataloader.dataset.datasets]))
test_dataloader = val_dataloader
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500,
                    save_last=True, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=2e-4,
         gamma=100, update_buffers=True),
    dict(type='TimeBudgetHook', minutes=60),
]
val_evaluator = dict(type='CocoMetric', classwise=True)
test_evaluator = [val_evaluator, dict(type='KittiMetric')]
