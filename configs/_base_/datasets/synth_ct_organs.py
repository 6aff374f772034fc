# Organ segmentation on CT slices (CTOrganSegDataset, medical plugin):
# background, body, lungs, liver, heart per pixel, read from one DICOM SEG
# per series onto the series' grid. The generated lesion studies with
# --organ-masks: the same images as without (the pretraining and detection
# studies read them too) plus exact masks from the phantom's surfaces.
# Training and validation split the PATIENTS of the training study (as the
# lesion datasets do: same split_seed, same patients); the test study is
# made with seeds training never saw:
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1 --organ-masks
#   perception synth-ct data/ct_lesions/test --patients 12 --scanners 3 --seed 101 --organ-masks
#
# (add --overwrite to put the masks beside an existing study: the images
# come out the same). Other data: one SEG per series under seg_dir, its
# segments labelled with these class names.
train_root = 'data/ct_lesions/train'
test_root = 'data/ct_lesions/test'
num_slices = 1
input_size = (256, 256)
meta_keys = ('img_path', 'img_shape', 'ori_shape', 'scale_factor',
             'homography_matrix', 'flip', 'series_uid', 'slice_index',
             'affine', 'slice_offsets', 'sample_idx')

train_pipeline = [
    dict(type='LoadCTSegMap'),     # before the geometry: the mask follows
    # no flips: the liver and heart keep their sides
    dict(type='RandomResizedCrop', size=input_size, crop_scale=(0.5, 1.0),
         ratio=(0.8, 1.25), interpolation='bilinear'),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='Resize', scale=input_size, keep_ratio=True),
    dict(type='LoadCTSegMap'),     # after: compared in source pixels
    dict(type='PackInputs', meta_keys=meta_keys),
]


def _organs(root, split, pipeline):
    # the study folder; DICOM below dicom/, the SEGs below organs/
    return dict(type='CTOrganSegDataset', data_root=root,
                series_dirs=['dicom'], seg_dir='organs', split=split,
                val_fraction=0.2, split_seed=0, num_slices=num_slices,
                test_mode=split != 'train', pipeline=pipeline)


train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_organs(train_root, 'train', train_pipeline),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_organs(train_root, 'val', test_pipeline),
)
test_dataloader = dict(val_dataloader,
                       dataset=_organs(test_root, 'all', test_pipeline))
val_evaluator = dict(type='IoUMetric')
test_evaluator = val_evaluator
