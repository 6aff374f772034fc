# Road objects on generated drives, ViT-Tiny from scratch, at most 1000
# iterations of batch 8 or 45 minutes of wall clock, whichever comes first:
# the scratch row of the detection study in docs/benchmarks.md (its
# pretrained twin: tal_vit-tiny-p16-mae_simplefpn_1000it-45min_synth-drives.py).
# Make the drives (exact list in docs/benchmarks.md), then:
#
#   perception synth-drive data/det/train_s1 --seed 1 --frames 100 \
#       --cameras 1 --formats kitti bdd100k          # ... train_s8, test_s101..103
#   perception train configs/detection/tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py --amp
#   perception test configs/detection/tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py \
#       work_dirs/tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives --show-dir pictures/
_base_ = [
    '../_base_/models/det_vit-tiny-p16_simplefpn.py',
    '../_base_/datasets/synth_drives_kitti.py',
    '../_base_/schedules/finetune_detection.py',
    '../_base_/default_runtime.py',
]
max_iters = 1000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
# about 2.4 s an iteration on one core each, two runs side by side
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters,
         eta_min_ratio=0.01),
]
train_dataloader = dict(num_workers=1, sampler=dict(type='InfiniteSampler',
                                                    shuffle=True))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=250,
                    save_last=True, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=2e-4,
         gamma=100, update_buffers=True),
    dict(type='TimeBudgetHook', minutes=45),
]
val_evaluator = dict(type='CocoMetric', classwise=True)
test_evaluator = [val_evaluator, dict(type='KittiMetric')]
