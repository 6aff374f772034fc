# Generated labelled shapes (circle / square / triangle), 64x64 RGB.
# Write them with:  perception synth-images data/smoke
# The smoke set is tiny: train, val and test read the same images (it
# checks the machinery, not generalisation).
dataset_type = 'ImageFolderDataset'
data_root = 'data/smoke'

# mmengine's Runner gives this to the model unless the model sets its own.
data_preprocessor = dict(
    type='PerceptionDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, with_label=True,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, with_label=True,
                 pipeline=test_pipeline),
)
test_dataloader = val_dataloader

val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
