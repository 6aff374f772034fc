# Scene classification (time of day) of generated drives' frames, from the
# BDD100K frame attributes synth-drive writes from its --lighting (day ->
# daytime, dusk -> dawn/dusk, night -> night): the eight training drives
# and three unseen test drives of docs/benchmarks.md ("segmentation" and
# "classification": the same drives). 640x360 frames, fitted to 512x288.
train_roots = [f'data/seg/train_s{s}' for s in range(1, 9)]
test_roots = [f'data/seg/test_s{s}' for s in (101, 102, 103)]
input_scale = (512, 288)
scene_classes = ['daytime', 'dawn/dusk', 'night']

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(360, 640),
                  scale=(0.5, 1.0), ratio=(1.6, 1.95), p=0.5),
         ]),
    dict(type='Resize', scale=input_scale),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=input_scale),
    dict(type='PackInputs'),
]


def _scenes(roots, pipeline, test_mode):
    return dict(type='ConcatDataset', datasets=[
        dict(type='Bdd100kSceneDataset', data_root=f'{root}/bdd100k',
             ann_file='labels/det_20/det_train.json',
             data_prefix=dict(img='images/100k/train'),
             attribute='timeofday', classes=scene_classes,
             test_mode=test_mode, pipeline=pipeline)
        for root in roots])


train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_scenes(train_roots, train_pipeline, False),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_scenes(test_roots, test_pipeline, True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
