# nuImages 2D boxes (or nuScenes 3D boxes projected into the cameras: set
# mode='nuscenes' and data_root to the nuScenes folder) in the unified
# driving taxonomy (class maps `nuimages` / `nuscenes`). Layout:
# data/nuimages/{v1.0-train,v1.0-val}/*.json and data/nuimages/samples/.
# Needs the driving plugin.
dataset_type = 'NuImagesDataset'
data_root = 'data/nuimages/'

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(448, 800),
                  scale=(0.3, 1.0), ratio=(1.6, 2.0), p=1.0),
         ],
         min_visibility=0.3, min_area=16),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(1600, 900)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 version='v1.0-train', mode='auto',
                 filters=dict(min_area=16, min_visibility=0.4),
                 on_bad_sample='skip', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 version='v1.0-val', mode='auto', test_mode=True,
                 pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
