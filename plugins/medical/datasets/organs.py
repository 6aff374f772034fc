"""``CTOrganSegDataset``: CT slices with per-pixel organ labels read from
DICOM SEG objects onto their series' grid, and ``LoadCTSegMap``, which
hands a slice's labels to the pipeline as ``gt_seg_map``."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from mmengine.logging import print_log

from perception.data import BaseTransform
from perception.errors import UserError
from perception.registry import DATASETS, TRANSFORMS
from perception.structures import SEG_IGNORE_INDEX
from perception_medical.synth.organs import ORGAN_CLASSES

from .base import CTSliceBase, split_patients, with_slice_loader


class OrganLabelError(UserError, ValueError):
    """SEG files that do not fit the dataset (classes, series)."""


def find_segs(folder: str) -> dict[str, str]:
    """Series UID -> the DICOM SEG file under ``folder`` that references it
    (headers only; files that are not SEG are passed over). Two SEGs of
    one series are an error."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    if not os.path.isdir(folder):
        raise OrganLabelError(
            f"seg_dir '{folder}' does not exist; point it at the folder of "
            'the DICOM SEG files (`perception synth-ct OUT --organ-masks` '
            'writes OUT/organs)')
    found: dict[str, str] = {}
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(parent, name)
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
                    'Modality', 'ReferencedSeriesSequence'])
            except (InvalidDicomError, OSError, ValueError):
                continue
            if str(ds.get('Modality', '')) != 'SEG':
                continue
            for item in ds.get('ReferencedSeriesSequence') or []:
                uid = str(item.get('SeriesInstanceUID', ''))
                if uid in found:
                    raise OrganLabelError(
                        f'{path} and {found[uid]} are both SEGs of series '
                        f'{uid}; keep one per series under {folder}')
                found[uid] = path
    return found


def to_dataset_classes(path: str, labels: np.ndarray, seg_classes: list[str],
                       classes: Sequence[str]) -> np.ndarray:
    """``labels`` (values index ``seg_classes``) as uint8 indices of the
    dataset's ``classes``, matched by name (case-insensitive)."""
    names = {c.lower(): i for i, c in enumerate(classes)}
    lut = np.full(len(seg_classes), SEG_IGNORE_INDEX, np.uint8)
    for value, name in enumerate(seg_classes):
        if name.lower() not in names:
            raise OrganLabelError(
                f"{path}: segment {value} SegmentLabel '{name}' is none of "
                f'the classes {list(classes)}; add it to the dataset '
                "metainfo's classes (or relabel the SEG)")
        lut[value] = names[name.lower()]
    return lut[labels]


@DATASETS.register_module()
class CTOrganSegDataset(CTSliceBase):
    """CT slices (2D, or 2.5D stacks as channels) with organ labels.

    Labels come from one DICOM SEG per series under ``seg_dir``
    (``perception synth-ct OUT --organ-masks`` writes them to
    ``OUT/organs``), read onto the series' grid by
    :func:`~perception_medical.dicom.seg_read.read_seg` (frames matched by
    referenced instance and plane position; a SEG off its series' grid is
    an error). Segments are matched to ``classes`` by their SegmentLabel;
    uncovered pixels are background (class 0). Each sample carries
    ``ct_seg_map`` (H, W) uint8, which ``LoadCTSegMap`` turns into
    ``gt_seg_map``, and the CT meta keys (``series_uid``, ``slice_index``,
    ``affine``). Series without a SEG are left out and counted in the log.
    The labels are read once and held in memory (a byte per pixel: 125 MB
    for 40 series of 48 slices of 256 x 256).

    Args:
        data_root: the study folder.
        seg_dir: folder of the SEG files (relative to ``data_root`` or
            absolute); keep it outside ``series_dirs``.
        split: 'train', 'val' or 'all'; patients are split, as in
            ``LesionDetectionDataset`` (same ``val_fraction``,
            ``split_seed``: the same patients).
        series_dirs, num_slices, slice_stride, index_file, on_problem,
            isolate: as in ``DicomSliceDataset``.
    """

    METAINFO = dict(classes=ORGAN_CLASSES)

    def __init__(self, data_root: str = '', pipeline: Sequence = (),
                 seg_dir: str = 'organs', split: str = 'train',
                 val_fraction: float = 0.2, split_seed: int = 0,
                 num_slices: int = 1, slice_stride: int = 1,
                 series_dirs: Sequence[str] | None = None,
                 index_file: str | None = None, on_problem='error',
                 isolate: bool = False, **kwargs) -> None:
        if split not in ('train', 'val', 'all'):
            raise ValueError(f"split must be 'train', 'val' or 'all', got "
                             f'{split!r}')
        self._setup(data_root, series_dirs, num_slices, slice_stride,
                    index_file, on_problem)
        self.seg_dir = seg_dir if os.path.isabs(seg_dir) else os.path.join(
            data_root or '', seg_dir)
        self.split, self.val_fraction = split, val_fraction
        self.split_seed = split_seed
        super().__init__(data_root=data_root,
                         pipeline=with_slice_loader(pipeline, isolate), **kwargs)

    def load_data_list(self) -> list[dict]:
        from perception_medical.dicom.seg_read import SeriesGrid, read_seg
        series = self._index()['series']
        segs = find_segs(self.seg_dir)
        missing = [e['series_uid'] for e in series if e['series_uid'] not in segs]
        if missing:
            print_log(f'CTOrganSegDataset: {len(missing)} of {len(series)} '
                      f'series have no SEG under {self.seg_dir} and are left '
                      f'out (e.g. {missing[0]})', logger='current', level=30)
        series = [e for e in series if e['series_uid'] in segs]
        if not series:
            raise OrganLabelError(
                f'no series under {", ".join(self.roots)} has a SEG under '
                f'{self.seg_dir}; make them with `perception synth-ct OUT '
                '--organ-masks` or point seg_dir at your SEG files')
        keep = split_patients([e['patient'] for e in series],
                              self.val_fraction, self.split_seed)[self.split]
        classes = list(self.metainfo['classes'])
        data = []
        for entry in series:
            if entry['patient'] not in keep:
                continue
            path = segs[entry['series_uid']]
            seg = read_seg(path, SeriesGrid.from_index_entry(entry))
            labels = to_dataset_classes(path, seg.labels, seg.classes, classes)
            for k in range(entry['shape'][0]):
                info = self._slice_info(entry, k)
                info['ct_seg_map'] = np.ascontiguousarray(labels[k])
                data.append(info)
        return data


@TRANSFORMS.register_module()
class LoadCTSegMap(BaseTransform):
    """``ct_seg_map`` (the slice's labels from ``CTOrganSegDataset``) into
    ``gt_seg_map``. As ``LoadSegMap``: before the geometric transforms in
    training pipelines, after them in test pipelines (compared in source
    pixels)."""

    def transform(self, results: dict) -> dict:
        labels = results['ct_seg_map']
        shape = tuple(results.get('ori_shape', labels.shape))
        if labels.shape != shape:
            raise OrganLabelError(
                f"{results.get('img_path')}: organ labels are {labels.shape} "
                f'but the slice is {shape} (height, width)')
        results['gt_seg_map'] = labels.copy()
        return results
