# FCMAE pretraining of ConvNeXt-Atto (V2) on the generated lesion study's
# training patients, no labels: the pretraining half of the ConvNeXt CT
# lesion study. The input is exactly the detector's
# (configs/detection/tal_convnext-atto_fpn_4000it-60min_synth-ct-lesions.py):
# 3 adjacent slices, each through the lung and the mediastinum window (6
# channels, slice-major), 256x256, so the pretrained stem needs no
# inflation. Only the patients of the detector's training split are read
# (its validation and test patients stay unseen); the lesion boxes the
# dataset carries are never used by FCMAE. At most 20 minutes on 2 cores.
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception train configs/pretrain/fcmae_convnext-atto_1xb16-20min_synth-ct-lesions.py \
#       --work-dir work_dirs/ct_lesions/fcmae_pretrain
#
# Its detector: tal_convnext-atto-fcmae_fpn_4000it-60min_synth-ct-lesions.py.
_base_ = [
    '../_base_/models/fcmae_convnext-atto.py',
    '../_base_/schedules/mae_adamw_1xb32-400e.py',
    '../_base_/default_runtime.py',
]

windows = [(-600, 1500), (40, 400)]  # lung, mediastinum (HU)
model = dict(
    backbone=dict(in_chans=6),
    input_size=(256, 256),
    data_preprocessor=dict(
        _delete_=True,
        type='PerceptionDataPreprocessor',
        windows=windows,
        channel_meaning=[f'slice{o:+d}/{w}' for o in (-1, 0, 1)
                         for w in ('lung', 'mediastinum')],
        mean=[0.5] * 6,
        std=[0.25] * 6),
)

train_pipeline = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # the detector's training split (same split_seed and val_fraction)
    dataset=dict(type='LesionDetectionDataset',
                 data_root='data/ct_lesions/train', series_dirs=['dicom'],
                 ann_file='annotations.csv', split='train', val_fraction=0.2,
                 split_seed=0, num_slices=3, slice_stride=1,
                 pipeline=train_pipeline),
)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, save_last=True,
                    max_keep_ckpts=2))
custom_hooks = [dict(type='ReconstructionHook', interval=200, num_images=4),
                dict(type='TimeBudgetHook', minutes=20)]

# a schedule for the budget: short warm-up, the larger lr of the MAE CT
# budget config, cosine to 0 over the epochs that fit 20 minutes
max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=15),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
