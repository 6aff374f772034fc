# MAE pretraining of ViT-Tiny (patch 16) on driving camera frames, 256x512
# (a 16x32 patch grid; sin-cos positions are built for it). Frames come from
# any source the driving plugin opens (video, image folder, ROS bag, rig),
# cached to disk as images by CameraFeedDataset (driving plugin), e.g.
#
#   perception synth-drive data/driving
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-400e_driving-256x512.py \
#       --cfg-options train_dataloader.dataset.sources="['data/driving/video.mp4']"
#
# The dataset type needs the driving plugin installed (pip install
# perception[driving]); this plugin does not import it.
_base_ = [
    '../_base_/models/mae_vit-tiny-p16.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(img_size=(256, 512)))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomResizedCrop', size=(256, 512), crop_scale=(0.35, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CameraFeedDataset',
                 sources=['data/driving/video.mp4'],
                 stride=5,
                 cache_dir='data/driving/frame_cache',
                 pipeline=train_pipeline),
)

# MAE recipe (see mae_vit-tiny_p16_224.py): lr = 1.5e-4 x 32 / 256.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 32 / 256, betas=(0.9, 0.95),
                   weight_decay=0.05),
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

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, save_last=True,
                    max_keep_ckpts=3))
custom_hooks = [dict(type='ReconstructionHook', interval=1000,
                     num_images=4)]
