# Generated drives in KITTI format (perception synth-drive writes
# OUT/kitti/training): eight drives for training, three drives made with
# seeds training never saw for validation and testing (the exact commands:
# docs/benchmarks.md, "detection"). 640x360 frames, fitted to 512x288.
train_roots = [f'data/det/train_s{s}/kitti/training/' for s in range(1, 9)]
test_roots = [f'data/det/test_s{s}/kitti/training/' for s in (101, 102, 103)]
kitti_filters = dict(min_height=8, max_truncation=0.5, max_occlusion=2)
input_scale = (512, 288)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(360, 640),
                  scale=(0.5, 1.0), ratio=(1.6, 1.95), p=0.5),
             dict(type='ColorJitter', brightness=0.3, contrast=0.3,
                  saturation=0.3, hue=0.02, p=0.5),
         ],
         min_visibility=0.3, min_area=16, small_boxes='ignore'),
    dict(type='Resize', scale=input_scale, keep_ratio=True),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=input_scale, keep_ratio=True),
    dict(type='PackInputs'),
]


def _drives(roots, pipeline, test_mode):
    return dict(type='ConcatDataset', datasets=[
        # the drive's class map names its extra KITTI types (Bus, Truck...)
        dict(type='KittiDataset', data_root=root, filters=kitti_filters,
             class_map=root.replace('training/', 'class_map.yaml'),
             test_mode=test_mode, on_bad_sample='skip', pipeline=pipeline)
        for root in roots])


train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=_drives(train_roots, train_pipeline, False),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_drives(test_roots, test_pipeline, True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
