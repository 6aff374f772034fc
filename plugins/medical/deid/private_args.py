"""Which arguments of the medical plugin's components identify patients
(imported by the CT datasets' base module, so declared wherever those
datasets are defined).

Hospital archives name folders after patients (``DOE_JOHN_19610101/``), so
the folders and files a CT dataset is given must not be copied into what a
run writes. Declaring them here lets the core's privacy guard
(:mod:`perception.engine.privacy`) redact them from the logged, dumped and
checkpointed config and from log records, for every config that uses these
types, with no ``privacy`` section needed.
"""
from __future__ import annotations

from perception.engine.privacy import register_private_args

#: config arguments that hold paths into a patient archive.
PATH_ARGS = ('data_root', 'data_prefix', 'ann_file', 'box_file',
             'series_dirs', 'series', 'folders', 'paths', 'files',
             'cache_dir', 'index_file', 'annotations_csv', 'boxes_csv',
             'slice_boxes', 'seg_dir')

for _type in ('DicomSliceDataset', 'LesionDetectionDataset'):
    register_private_args(_type, PATH_ARGS)
