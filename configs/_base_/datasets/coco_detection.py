# COCO-format detection. With the default class map `coco` the 80 COCO
# classes are mapped to the unified driving taxonomy (people -> pedestrian,
# stop sign -> traffic sign, the rest dropped); set class_map=None to keep a
# file's own categories (any COCO-format dataset). iscrowd boxes are ignore
# regions. Needs the driving plugin.
dataset_type = 'CocoDetDataset'
data_root = 'data/coco/'

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[
             dict(type='HorizontalFlip', p=0.5),
             dict(type='LongestMaxSize', max_size=640),
             dict(type='PadIfNeeded', min_height=640, min_width=640,
                  position='top_left', border_mode=0, fill=0),
         ],
         min_area=4),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Albumentations',
         transforms=[dict(type='LongestMaxSize', max_size=640)]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_train2017.json',
                 img_dir='train2017', on_bad_sample='skip',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_val2017.json',
                 img_dir='val2017', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
