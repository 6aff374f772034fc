# Drivable area (BDD100K drivable masks: direct = the ego lane,
# alternative = the other lanes, background) of generated drives:
# perception synth-drive writes them with --formats bdd100k. Eight drives
# for training, three made with seeds training never saw for validation and
# testing (the exact commands: docs/benchmarks.md, "segmentation"). 640x360
# frames, fitted to 512x288.
train_roots = [f'data/seg/train_s{s}' for s in range(1, 9)]
test_roots = [f'data/seg/test_s{s}' for s in (101, 102, 103)]
input_scale = (512, 288)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadSegMap'),       # before the geometry: the mask follows
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(360, 640),
                  scale=(0.5, 1.0), ratio=(1.6, 1.95), p=0.5),
             dict(type='ColorJitter', brightness=0.3, contrast=0.3,
                  saturation=0.3, hue=0.02, p=0.5),
         ]),
    dict(type='Resize', scale=input_scale, keep_ratio=True),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=input_scale, keep_ratio=True),
    dict(type='LoadSegMap'),       # after: compared in source pixels
    dict(type='PackInputs'),
]


def _drivable(roots, pipeline, test_mode):
    return dict(type='ConcatDataset', datasets=[
        dict(type='Bdd100kSegDataset', data_root=f'{root}/bdd100k',
             task='drivable', test_mode=test_mode, pipeline=pipeline)
        for root in roots])


train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_drivable(train_roots, train_pipeline, False),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_drivable(test_roots, test_pipeline, True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric')
test_evaluator = val_evaluator
