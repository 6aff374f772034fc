# MAE pretraining of ViT-Tiny (patch 16) on single CT slices, one channel:
# HU values are windowed in the data preprocessor (the core windowing op,
# lung window here) and the window travels in the checkpoint's
# pretrained_cfg. Slices come from DicomSliceDataset (medical plugin), e.g.
#
#   perception synth-ct data/ct
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-400e_ct-1ch.py
#
# The dataset type needs the medical plugin installed (pip install
# 'perception-toolkit[medical]'); this plugin does not import it.
_base_ = [
    '../_base_/models/mae_vit-tiny-p16.py',
    '../_base_/schedules/mae_adamw_1xb32-400e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(in_chans=1),
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        windows=[(-600, 1500)],          # lung window: HU -> [0, 1]
        channel_meaning=['lung'],
        mean=[0.5],                      # on the windowed [0, 1] scale
        std=[0.25],
        _delete_=True,
    ),
)

train_pipeline = [
    dict(type='RandomResizedCrop', size=224, crop_scale=(0.4, 1.0),
         interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DicomSliceDataset', data_root='data/ct',
                 pipeline=train_pipeline),
)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, save_last=True,
                    max_keep_ckpts=3))
# pictures show the windowed slices (grey), as the model sees them
custom_hooks = [dict(type='ReconstructionHook', interval=1000,
                     num_images=4)]
