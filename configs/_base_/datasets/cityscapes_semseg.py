# Cityscapes semantic segmentation: gtFine *_labelIds.png through the
# built-in `cityscapes` class map (the 34 label ids onto the 19 training
# classes, the rest ignored), 2975 train and 500 val images of 2048x1024,
# fitted to 1024x512. Layout: data/cityscapes/leftImg8bit/{train,val}/<city>/
# and data/cityscapes/gtFine/{train,val}/<city>/. Needs the driving plugin.
data_root = 'data/cityscapes/'
input_scale = (1024, 512)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadSegMap'),       # before the geometry: the mask follows
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(512, 1024),
                  scale=(0.25, 1.0), ratio=(1.8, 2.2), p=1.0),
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
    dataset=dict(type='CityscapesDataset', data_root=data_root,
                 split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CityscapesDataset', data_root=data_root,
                 split='val', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric')
test_evaluator = val_evaluator
