# Slice-level "has lesion" classification of CT slabs
# (LesionSliceClassificationDataset, medical plugin): the studies, 2.5D
# slabs (`num_slices` adjacent slices as channels, in HU; the model's data
# preprocessor windows them), patient-level split and lesion annotations of
# synth_ct_lesions.py, each slab labelled 'lesion' when its centre slice
# shows a lesion of at least min_size_mm (3 mm), else 'no lesion'. Slices
# whose only lesions are smaller are left out (ignored_slices='drop'; the
# load line counts them). Training and validation split the PATIENTS of
# the training study; the test set is a study made with unseen seeds:
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception synth-ct data/ct_lesions/test --patients 12 --scanners 3 --seed 101
_base_ = ['./synth_ct_lesions.py']

# the label's name as a meta key, for the per-class report below
meta_keys = _base_.meta_keys + ('true_class', )
train_pipeline = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=_base_.input_size, keep_ratio=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='Resize', scale=_base_.input_size, keep_ratio=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]
_slices = dict(type='LesionSliceClassificationDataset', ignored_slices='drop')

# the sampler stays LesionBalancedSampler (half of every batch shows a
# lesion): the classifier is trained for balanced accuracy, so report the
# per-class accuracies, not only top-1 (a few slices in ten show a lesion)
train_dataloader = dict(batch_size=16,
                        dataset=dict(_slices, pipeline=train_pipeline))
val_dataloader = dict(batch_size=16,
                      dataset=dict(_slices, pipeline=test_pipeline))
test_dataloader = dict(batch_size=16,
                       dataset=dict(_slices, pipeline=test_pipeline))
# top-1 accuracy (accuracy/top1) and top-1 within each true class
# (per_class/true_class/lesion = sensitivity, .../no lesion = specificity;
# their mean is the balanced accuracy), bootstrap intervals over scans
val_evaluator = dict(
    _delete_=True, type='SubgroupMetric', metric=dict(type='Accuracy', topk=(1, )),
    key='top1', fields=['true_class'], unit_key='series_uid', min_group_size=3,
    n_boot=200, prefix='per_class')
test_evaluator = dict(val_evaluator, out='per_class.json')
