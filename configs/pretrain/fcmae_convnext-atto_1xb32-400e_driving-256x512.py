# FCMAE (ConvNeXt V2) pretraining of ConvNeXt-Atto on driving camera frames,
# 256x512, for edge deployments that prefer ConvNets. Frames from
# CameraFeedDataset (driving plugin), e.g.
#
#   perception synth-drive data/driving
#   perception train configs/pretrain/fcmae_convnext-atto_1xb32-400e_driving-256x512.py
#
# The dataset type needs the driving plugin installed; this plugin does not
# import it.
_base_ = [
    '../_base_/models/fcmae_convnext-atto.py',
    '../_base_/default_runtime.py',
]

model = dict(input_size=(256, 512))

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

# ConvNeXt V2's FCMAE recipe: AdamW, lr 1.5e-4 x batch / 256, weight decay
# 0.05 except norms and biases, cosine with 40 warm-up epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 32 / 256, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0,
        custom_keys={'mask_token': dict(decay_mult=0.0)}),
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
