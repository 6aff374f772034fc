"""``LesionDetectionDataset``: per-slice lesion boxes from LUNA16-style
world annotations (through each series' geometry) and/or a per-slice box
CSV, with a patient-level train/val split."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from mmengine.logging import print_log

from perception.registry import DATASETS
from perception_medical.annotations import read_annotations, read_slice_boxes

from .base import CTSliceBase, split_patients, with_slice_loader
from .series_index import sop_digest


def lesion_sections(affine: np.ndarray, shape: Sequence[int],
                    center_lps: np.ndarray, diameter_mm: float
                    ) -> list[tuple[int, np.ndarray, float]]:
    """Where a spherical lesion crosses the slices of a volume.

    Returns ``[(slice index, xyxy pixel-edge box, section diameter mm)]``
    for every slice whose plane cuts the sphere, boxes clipped to the
    image. Assumes the volume's axes are orthogonal (as ``load_series``
    returns them unless it kept a gantry tilt).
    """
    affine = np.asarray(affine, np.float64)
    sz, sy, sx = np.linalg.norm(affine[:3, :3], axis=0)
    kz, ky, kx = np.linalg.solve(affine[:3, :3],
                                 np.asarray(center_lps) - affine[:3, 3])
    r = diameter_mm / 2.0
    n, h, w = shape[:3]
    out = []
    for k in range(max(int(np.floor(kz - r / sz)), 0),
                   min(int(np.ceil(kz + r / sz)) + 1, n)):
        d = (k - kz) * sz
        if abs(d) >= r:
            continue
        rs = np.sqrt(r * r - d * d)
        box = np.array([kx + 0.5 - rs / sx, ky + 0.5 - rs / sy,
                        kx + 0.5 + rs / sx, ky + 0.5 + rs / sy])
        box = np.clip(box, 0, [w, h, w, h])
        if box[2] > box[0] and box[3] > box[1]:
            out.append((k, box.astype(np.float32), float(2 * rs)))
    return out


@DATASETS.register_module()
class LesionDetectionDataset(CTSliceBase):
    """CT slices (2D, or 2.5D stacks as channels) with lesion boxes.

    Boxes come from ``ann_file`` (LUNA16: ``seriesuid,coordX,coordY,coordZ,
    diameter_mm``, world mm in LPS) through each series' geometry, and/or
    from ``box_file`` (``sop_instance_uid,x1,y1,x2,y2,label`` in pixel-edge
    coordinates); the two are combined when both are given. A lesion
    section smaller than ``min_size_mm`` on a slice is an ignore region
    (neither positive nor negative). Samples carry ``gt_bboxes``,
    ``gt_labels``, ``gt_ignore_flags`` and the CT meta keys
    (``series_uid``, ``slice_index``, ``affine``).

    Args:
        data_root: folder searched recursively for DICOM series.
        ann_file, box_file: CSVs (relative to ``data_root``, or absolute);
            either may be None.
        split: 'train', 'val' or 'all'. Patients (not series or slices) are
            split, so no patient is in both.
        val_fraction, split_seed: share of patients in 'val' and the seed.
        num_slices, slice_stride: 2.5D stacks as in ``DicomSliceDataset``.
        min_size_mm: sections (or boxes) smaller than this are ignored.
        filter_empty: keep only slices with at least one box.
        series_dirs, index_file, on_problem, isolate: as in ``DicomSliceDataset``.
    """

    METAINFO = dict(classes=('lesion', ))

    def __init__(self, data_root: str = '', pipeline: Sequence = (),
                 ann_file: str | None = 'annotations.csv',
                 box_file: str | None = None, split: str = 'train',
                 val_fraction: float = 0.2, split_seed: int = 0,
                 num_slices: int = 1, slice_stride: int = 1,
                 min_size_mm: float = 3.0, filter_empty: bool = False,
                 series_dirs: Sequence[str] | None = None,
                 index_file: str | None = None, on_problem='error',
                 isolate: bool = False, **kwargs) -> None:
        if split not in ('train', 'val', 'all'):
            raise ValueError(f"split must be 'train', 'val' or 'all', got "
                             f'{split!r}')
        if ann_file is None and box_file is None:
            raise ValueError('LesionDetectionDataset needs ann_file and/or '
                             'box_file')
        self._setup(data_root, series_dirs, num_slices, slice_stride,
                    index_file, on_problem)

        def resolve(path: str | None) -> str | None:
            if path is None or os.path.isabs(path):
                return path
            return os.path.join(data_root or '', path)

        self.lesion_file, self.box_file = resolve(ann_file), resolve(box_file)
        self.split, self.val_fraction = split, val_fraction
        self.split_seed, self.min_size_mm = split_seed, min_size_mm
        self.filter_empty = filter_empty
        self.unmatched: list[str] = []
        super().__init__(data_root=data_root,
                         pipeline=with_slice_loader(pipeline, isolate), **kwargs)

    # -- split -----------------------------------------------------------
    def split_patients(self, patients: Sequence[str]) -> dict[str, set]:
        """Patient keys of each split (seeded shuffle of sorted keys)."""
        return split_patients(patients, self.val_fraction, self.split_seed)

    # -- boxes -----------------------------------------------------------
    def _boxes(self, series: list[dict]) -> dict[tuple[str, int], list]:
        boxes: dict[tuple[str, int], list] = {}
        by_uid = {e['series_uid']: e for e in series}
        if self.lesion_file:
            lesions = read_annotations(self.lesion_file)
            for uid, items in lesions.items():
                entry = by_uid.get(uid)
                if entry is None:
                    self.unmatched.append(f'{self.lesion_file}: seriesuid '
                                          f'{uid} ({len(items)} lesions)')
                    continue
                for xyz, diameter in items:
                    for k, box, size in lesion_sections(
                            entry['affine'], entry['shape'], xyz, diameter):
                        boxes.setdefault((uid, k), []).append(
                            (box, 0, size < self.min_size_mm))
        if self.box_file:
            where = {}
            for e in series:
                for k, digest in enumerate(e['sop_digests']):
                    where[digest] = (e, k)
            classes = self.metainfo.get('classes') or ()
            for line, uid, box, label in read_slice_boxes(
                    self.box_file, len(classes) or None):
                found = where.get(sop_digest(uid))
                if found is None:
                    self.unmatched.append(f'{self.box_file}: row {line}: '
                                          'SOP instance not found')
                    continue
                e, k = found
                sy, sx = e['spacing'][1:]
                size = min((box[2] - box[0]) * sx, (box[3] - box[1]) * sy)
                boxes.setdefault((e['series_uid'], k), []).append(
                    (box, label, size < self.min_size_mm))
        return boxes

    def load_data_list(self) -> list[dict]:
        series = self._index()['series']
        keep = self.split_patients([e['patient'] for e in series])[self.split]
        series = [e for e in series if e['patient'] in keep]
        boxes = self._boxes(self._index()['series'])
        if self.unmatched:
            print_log(f'LesionDetectionDataset: {len(self.unmatched)} '
                      'annotation(s) match no series under '
                      f"{', '.join(self.roots)} (e.g. {self.unmatched[0]})",
                      logger='current', level=30)
        # per-scan subgroup fields (bands, no identities) for the metric
        self._metainfo['scan_fields'] = {
            e['series_uid']: dict(e.get('scan_fields') or {}) for e in series}
        data = []
        for entry in series:
            for k in range(entry['shape'][0]):
                found = boxes.get((entry['series_uid'], k), [])
                if self.filter_empty and not found:
                    continue
                info = self._slice_info(entry, k)
                info['gt_bboxes'] = np.array([b for b, _, _ in found],
                                             np.float32).reshape(-1, 4)
                info['gt_labels'] = np.array([lab for _, lab, _ in found],
                                             np.int64)
                info['gt_ignore_flags'] = np.array([i for _, _, i in found],
                                                   bool)
                info['has_lesion'] = bool((~info['gt_ignore_flags']).any())
                data.append(info)
        return data
