# Unlabeled driving camera frames for masked pretraining, 256x512 crops.
# CameraFeedDataset (driving plugin) decodes any source open_source accepts
# (video, image folder, ROS bag, rig) once and caches the frames as images;
# it hands the pipeline decoded RGB frames (`img`), so no LoadImage here.
#
#   perception synth-drive data/driving    # writes data/driving/video/front.mp4
train_pipeline = [
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
                 source=['data/driving/video/front.mp4'],
                 stride=5,
                 cache_dir='data/driving/frame_cache',
                 pipeline=train_pipeline),
)
