# BDD100K scene classification: each frame's `timeofday` attribute
# (daytime, dawn/dusk, night; `undefined` frames left out and counted) from
# the det_20 labels, 70k train and 10k val images of 1280x720 resized to
# 512x288. Layout: data/bdd100k/images/100k/{train,val}/*.jpg and
# data/bdd100k/labels/det_20/det_{train,val}.json. Needs the driving plugin.
data_root = 'data/bdd100k/'
input_scale = (512, 288)
scene_classes = ['daytime', 'dawn/dusk', 'night']

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(288, 512),
                  scale=(0.5, 1.0), ratio=(1.6, 1.95), p=1.0),
         ]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=input_scale),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='Bdd100kSceneDataset', data_root=data_root,
                 ann_file='labels/det_20/det_train.json',
                 data_prefix=dict(img='images/100k/train'),
                 attribute='timeofday', classes=scene_classes,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='Bdd100kSceneDataset', data_root=data_root,
                 ann_file='labels/det_20/det_val.json',
                 data_prefix=dict(img='images/100k/val'),
                 attribute='timeofday', classes=scene_classes,
                 test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
