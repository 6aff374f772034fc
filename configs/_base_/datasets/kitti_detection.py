# KITTI object benchmark, 2D boxes in the unified driving taxonomy (built-in
# class map `kitti`: DontCare, Misc and Person_sitting become ignore regions).
# data_root is KITTI's training/ folder (image_2/, label_2/, calib/); KITTI
# has no official val split: pass split_file='ImageSets/val.txt' (one id per
# line) to both datasets if you have one. `perception synth-drive OUT`
# writes a drive in this layout. Needs the driving plugin.
dataset_type = 'KittiDataset'
data_root = 'data/kitti/training/'

# KITTI's "moderate" level: height >= 25 px in KITTI's numbers (26 pixel
# edges), truncation <= 30 %, occlusion <= partly; the rest is ignored.
kitti_filters = dict(min_height=26, max_truncation=0.3, max_occlusion=1)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(320, 960),
                  scale=(0.4, 1.0), ratio=(2.5, 3.5), p=1.0),
             dict(type='ColorJitter', brightness=0.2, contrast=0.2,
                  saturation=0.2, hue=0.02, p=0.5),
         ],
         min_visibility=0.3, min_area=16, small_boxes='ignore'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(1248, 384)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 filters=kitti_filters, on_bad_sample='skip',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 filters=kitti_filters, test_mode=True,
                 pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
