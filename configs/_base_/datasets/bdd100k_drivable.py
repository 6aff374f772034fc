# BDD100K drivable area (labels/drivable/masks: 0 direct, 1 alternative,
# 2 background; the 2018 drivable_maps layout is read too), 70k train and
# 10k val images of 1280x720, fitted to 640x360 (padded to 640x384).
# Layout: data/bdd100k/images/100k/{train,val}/*.jpg and
# data/bdd100k/labels/drivable/masks/{train,val}/*.png. Needs the driving
# plugin.
data_root = 'data/bdd100k/'
input_scale = (640, 360)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadSegMap'),       # before the geometry: the mask follows
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(360, 640),
                  scale=(0.3, 1.0), ratio=(1.5, 2.0), p=1.0),
             dict(type='ColorJitter', brightness=0.3, contrast=0.3,
                  saturation=0.3, hue=0.02, p=0.5),
         ]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=input_scale, keep_ratio=True),
    dict(type='LoadSegMap'),       # after: compared in source pixels
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='Bdd100kSegDataset', data_root=data_root,
                 task='drivable', split='train', on_bad_sample='skip',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='Bdd100kSegDataset', data_root=data_root,
                 task='drivable', split='val', test_mode=True,
                 pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric')
test_evaluator = val_evaluator
