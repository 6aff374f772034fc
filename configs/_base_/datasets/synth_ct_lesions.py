# Lesions on CT slices (LesionDetectionDataset, medical plugin) as 2.5D
# inputs: each sample stacks `num_slices` adjacent slices (`slice_stride`
# apart) as channels, in HU; the model's data preprocessor windows them.
# Training and validation split the PATIENTS of the training studies
# (split_seed, val_fraction: no patient in both); the test set is a study
# made with seeds training never saw. Make the data (medical plugin):
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception synth-ct data/ct_lesions/test --patients 12 --scanners 3 --seed 101
#
# LUNA16 instead: data_root = the folder holding subset0..subset9 (the
# .mhd/.raw volumes are read as they are) and ann_file = its
# annotations.csv (world mm); see docs/medical.md.
train_root = 'data/ct_lesions/train'
test_root = 'data/ct_lesions/test'
num_slices = 3      # 3..9 adjacent slices as channels (odd)
slice_stride = 1
input_size = (256, 256)
# scan_fields: scanner, thickness band, sex and age band for subgroup reports
# (PackInputs' defaults plus scan_fields)
meta_keys = ('img_path', 'img_shape', 'ori_shape', 'scale_factor',
             'homography_matrix', 'flip', 'series_uid', 'slice_index',
             'affine', 'slice_offsets', 'sample_idx', 'scan_fields')

train_pipeline = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=input_size, keep_ratio=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='Resize', scale=input_size, keep_ratio=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]


def _lesions(root, split, pipeline):
    # the study folder; its DICOM below dicom/, the CSV beside it
    return dict(type='LesionDetectionDataset', data_root=root,
                series_dirs=['dicom'], ann_file='annotations.csv', split=split,
                val_fraction=0.2, split_seed=0, num_slices=num_slices,
                slice_stride=slice_stride, min_size_mm=3.0,
                test_mode=split != 'train', pipeline=pipeline)


train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    # half of every batch shows a lesion (a few slices in a hundred do)
    sampler=dict(type='LesionBalancedSampler', positive_fraction=0.5),
    dataset=_lesions(train_root, 'train', train_pipeline),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_lesions(train_root, 'val', test_pipeline),
)
test_dataloader = dict(val_dataloader,
                       dataset=_lesions(test_root, 'all', test_pipeline))
# LUNA16 FROC (CPM, sensitivity at 1/8..8 FPs per scan, by size) and, for
# comparison, COCO AP of the slice boxes
val_evaluator = [dict(type='FROCMetric', ann_file=f'{train_root}/annotations.csv'),
                 dict(type='CocoMetric', classwise=False)]
test_evaluator = [dict(type='FROCMetric', ann_file=f'{test_root}/annotations.csv'),
                  dict(type='CocoMetric', classwise=False)]
