# BDD100K 2D detection (det_20 labels), the ten classes of the unified
# driving taxonomy; BDD100K's own evaluation ignores "other person",
# "other vehicle" and "trailer": ignore regions here (class map `bdd100k`).
# Layout: data/bdd100k/images/100k/{train,val}/*.jpg and
# data/bdd100k/labels/det_20/det_{train,val}.json. Needs the driving plugin.
dataset_type = 'Bdd100kDataset'
data_root = 'data/bdd100k/'

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='RandomResizedCrop', size=(384, 640),
                  scale=(0.3, 1.0), ratio=(1.5, 2.0), p=1.0),
             dict(type='ColorJitter', brightness=0.3, contrast=0.3,
                  saturation=0.3, hue=0.02, p=0.5),
         ],
         min_visibility=0.3, min_area=16, small_boxes='ignore'),
    dict(type='PackInputs', meta_keys=(
        'img_path', 'img_shape', 'ori_shape', 'scale_factor',
        'homography_matrix', 'flip', 'timestamp_ns', 'sample_idx',
        'weather', 'scene', 'timeofday')),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(1280, 720)),
    # the frame attributes travel with each sample for the subgroup report
    dict(type='PackInputs', meta_keys=(
        'img_path', 'img_id', 'img_shape', 'ori_shape', 'scale_factor',
        'homography_matrix', 'flip', 'timestamp_ns', 'sample_idx',
        'weather', 'scene', 'timeofday')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='labels/det_20/det_train.json',
                 img_dir='images/100k/train', img_shape=(720, 1280),
                 filters=dict(min_area=16), on_bad_sample='skip',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='labels/det_20/det_val.json',
                 img_dir='images/100k/val', img_shape=(720, 1280),
                 test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
# Subgroup report: per-image recall by time of day, weather and scene, with
# bootstrap intervals, in the log and as work_dir/subgroups.json:
# test_evaluator = [dict(type='CocoMetric'), dict(
#     type='SubgroupMetric', metric=dict(type='PerImageDetectionMetric'),
#     key='recall', fields=['timeofday', 'weather', 'scene'],
#     min_group_size=30, out='subgroups.json')]
# (metric=dict(type='CocoMetric'), key='AP50' also works, but each of the
# n_boot resamples re-runs the COCO evaluation: keep n_boot near 100.)
