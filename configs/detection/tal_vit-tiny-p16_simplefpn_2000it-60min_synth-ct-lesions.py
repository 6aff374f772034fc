# Lung nodules and liver lesions on CT, 2.5D: ViT-Tiny (patch 16) from
# scratch -> simple feature pyramid with a stride-4 level (nodules of 3-6 mm
# are 2-4 pixels at the generated studies' 1.5 mm) -> anchor-free TAL head.
# Input: `num_slices` adjacent slices (3 here; 3..9 work) through the lung
# window, one channel each; PretrainedCfg records slice_offsets (-1, 0, 1),
# windows and channel_meaning with the weights. At most 2000 iterations of
# batch 8 or 60 minutes; validation (LUNA16 FROC + COCO slice AP) on the
# held-out patients every 500 iterations, the best CPM kept.
# Pretrained twin: tal_vit-tiny-p16-mae_simplefpn_2000it-60min_synth-ct-lesions.py.
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception synth-ct data/ct_lesions/test --patients 12 --scanners 3 --seed 101
#   perception train configs/detection/tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py
#   perception test configs/detection/tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py \
#       work_dirs/tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions --show-dir pictures/
#
# LUNA16: --cfg-options train_root=... does not reach the datasets (they are
# built when the base is read); point them with
#   --cfg-options train_dataloader.dataset.data_root=/data/luna16 \
#       train_dataloader.dataset.ann_file=/data/luna16/annotations.csv ...
# (docs/medical.md has the full list).
_base_ = [
    '../_base_/datasets/synth_ct_lesions.py',
    '../_base_/schedules/finetune_detection.py',
    '../_base_/default_runtime.py',
]
window = (-600, 1500)  # lung window, HU
model = dict(
    type='Detector',
    class_names=['lesion'],
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        windows=[window],                 # every slice through every window
        channel_meaning=['slice-1/lung', 'slice+0/lung', 'slice+1/lung'],
        mean=[0.5, 0.5, 0.5],             # on the windowed [0, 1] scale,
        std=[0.25, 0.25, 0.25],           # as the MAE CT pretraining
        pad_size_divisor=32,
    ),
    backbone=dict(type='VisionTransformer', arch='tiny', img_size=(256, 256),
                  patch_size=16, in_chans=3, pos_embed_type='sincos',
                  drop_path_rate=0.1),
    neck=dict(type='SimpleFPN', in_channels=192, out_channels=96,
              strides=(4, 8, 16, 32)),
    head=dict(type='TALDetHead', in_channels=96, feat_channels=96,
              strides=(4, 8, 16, 32),
              test_cfg=dict(score_thr=0.05, nms_iou=0.5, max_per_img=20)),
)
max_iters = 2000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters, val_interval=500)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min_ratio=0.01),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500,
                    save_last=True, max_keep_ckpts=2, save_best='froc/cpm',
                    rule='greater'))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=2e-4,
         gamma=100, update_buffers=True),
    dict(type='TimeBudgetHook', minutes=60),
]
