"""KITTI object benchmark reader (``training/image_2``, ``label_2``,
``calib``), parsed directly from the devkit readme's format.

Label files: one object per line, 15 space-separated values (16 with a
result ``score``): type, truncated, occluded, alpha, bbox (left, top, right,
bottom; 0-based pixel indices, inclusive), dimensions (h, w, l), location
(x, y, z), rotation_y. ``DontCare`` marks regions without labels: ignore
regions through the class map. Calibration files hold ``P0``..``P3``,
``R0_rect``, ``Tr_velo_to_cam``, ``Tr_imu_to_velo``; the image's camera
matrix ``P<k>`` (k from ``img_dir``, ``image_2`` -> P2) gives
``intrinsics``.

Supported: 2D boxes, truncation and occlusion as filter attributes, every
label line's fields (3D box included) kept in ``kitti_records`` in file
order (not used by 2D training), calib.
Left out: the tracking benchmark's label format (frame and track id
columns), velodyne points, stereo pairs.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from perception.data import BadSampleError
from perception.data.boxes import inclusive_to_xyxy
from perception.registry import DATASETS

from .base_det_dataset import DrivingDetDataset, image_size

KITTI_FIELDS = ('type', 'truncated', 'occluded', 'alpha', 'left', 'top',
                'right', 'bottom', 'height', 'width', 'length', 'x', 'y', 'z',
                'rotation_y')


def parse_kitti_calib(path: str) -> dict[str, np.ndarray]:
    """Read a KITTI object calib file: ``{'P2': (3, 4), 'R0_rect': (3, 3),
    'Tr_velo_to_cam': (3, 4), ...}``."""
    shapes = {12: (3, 4), 9: (3, 3)}
    calib = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            key, sep, values = line.partition(':')
            try:
                numbers = [float(v) for v in values.split()]
            except ValueError:
                numbers = []
            if not sep or len(numbers) not in shapes:
                raise BadSampleError(
                    f'{path}:{lineno}: expected "<name>: <9 or 12 numbers>"'
                    f', got {line.strip()[:60]!r}')
            calib[key.strip()] = np.asarray(numbers, np.float64).reshape(
                shapes[len(numbers)])
    return calib


def parse_kitti_line(line: str, where: str) -> dict:
    """One label line -> dict of the devkit's fields (floats, ``type`` str,
    ``occluded`` int, ``score`` when present)."""
    values = line.split()
    if len(values) not in (15, 16):
        raise BadSampleError(
            f'{where}: expected 15 values (16 with a score) per the KITTI '
            f'devkit readme, got {len(values)}: {line.strip()[:80]!r}')
    record: dict = {'type': values[0]}
    for name, text in zip(KITTI_FIELDS[1:] + ('score', ), values[1:]):
        try:
            record[name] = float(text)
        except ValueError:
            raise BadSampleError(f"{where}: field '{name}' is not a number: "
                                 f'{text!r}') from None
    for name in KITTI_FIELDS[1:] + ('score', ):
        if name in record and not math.isfinite(record[name]):
            raise BadSampleError(f"{where}: field '{name}' is not a finite "
                                 f'number: {record[name]}')
    dims = [record['height'], record['width'], record['length']]
    # DontCare and 2D-only exports write -1 for every dimension
    if min(dims) < 0 and dims != [-1.0, -1.0, -1.0]:
        raise BadSampleError(f'{where}: negative size (height, width, '
                             f'length) {dims}; KITTI writes -1 -1 -1 for '
                             'none')
    record['occluded'] = int(record['occluded'])
    return record


@DATASETS.register_module()
class KittiDataset(DrivingDetDataset):
    """KITTI object detection (2D boxes from ``label_2``).

    Args:
        data_root: e.g. ``data/kitti/training``.
        img_dir: image folder under ``data_root`` (``image_2``).
        label_dir: label folder (``label_2``); None for unlabelled images.
        calib_dir: calibration folder (``calib``); None to skip.
        split_file: optional text file of image ids, one per line (e.g.
            ``ImageSets/train.txt``); default every image in ``img_dir``.
        img_suffix: image file suffix.
        **kwargs: :class:`~.base_det_dataset.DrivingDetDataset`
            arguments (class_map, filters, pipeline, on_bad_sample, ...).
    """

    default_class_map = 'kitti'

    def __init__(self, data_root: str = '', img_dir: str = 'image_2',
                 label_dir: str | None = 'label_2',
                 calib_dir: str | None = 'calib',
                 split_file: str | None = None, img_suffix: str = '.png',
                 **kwargs) -> None:
        self.img_dir, self.label_dir = img_dir, label_dir
        self.calib_dir, self.split_file = calib_dir, split_file
        self.img_suffix = img_suffix
        tail = os.path.basename(os.path.normpath(img_dir))
        self.camera_index = int(tail[-1]) if tail[-1:].isdigit() else 2
        super().__init__(data_root=data_root, **kwargs)

    def sample_keys(self) -> Sequence[str]:
        if self.split_file:
            path = self.path(self.split_file)
            if not os.path.isfile(path):
                raise FileNotFoundError(f'KittiDataset: split_file {path} '
                                        'does not exist')
            with open(path, encoding='utf-8') as f:
                return [line.strip() for line in f if line.strip()]
        folder = self.path(self.img_dir)
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f'KittiDataset: image folder {folder} does not exist; set '
                'data_root to the folder holding image_2/, label_2/, calib/ '
                '(`perception synth-drive OUT` writes one)')
        keys = {f[:-len(self.img_suffix)] for f in os.listdir(folder)
                if f.endswith(self.img_suffix)}
        labels = self.path(self.label_dir) if self.label_dir else None
        if labels and os.path.isdir(labels):
            # labels whose image is missing: named by parse_sample
            keys |= {f[:-4] for f in os.listdir(labels) if f.endswith('.txt')}
        return sorted(keys)

    def parse_sample(self, key: str) -> dict:
        img_path = os.path.join(self.path(self.img_dir),
                                key + self.img_suffix)
        if self.label_dir and not os.path.isfile(img_path):
            label_path = os.path.join(self.path(self.label_dir), key + '.txt')
            if os.path.isfile(label_path):
                raise BadSampleError(
                    f'{label_path}: its image {img_path} is missing; restore '
                    'the image or delete the label file')
        height, width = image_size(img_path)
        info = dict(img_path=img_path, img_id=key, height=height,
                    width=width, camera=f'cam{self.camera_index}',
                    instances=[], kitti_records=[])
        if self.calib_dir:
            calib_path = os.path.join(self.path(self.calib_dir), key + '.txt')
            if not os.path.isfile(calib_path):
                raise BadSampleError(
                    f'{calib_path}: calibration file is missing (image '
                    f'{img_path}); restore it or set calib_dir=None')
            calib = parse_kitti_calib(calib_path)
            name = f'P{self.camera_index}'
            if name not in calib:
                raise BadSampleError(f'{calib_path}: no {name} line (the '
                                     f'camera matrix of {self.img_dir})')
            info['calib'] = calib
            info['intrinsics'] = calib[name][:, :3].astype(np.float32)
        if self.label_dir:
            self._read_labels(key, img_path, info)
        return info

    def _read_labels(self, key: str, img_path: str, info: dict) -> None:
        label_path = os.path.join(self.path(self.label_dir), key + '.txt')
        if not os.path.isfile(label_path):
            raise BadSampleError(
                f'{label_path}: label file is missing for image {img_path}; '
                'write an empty file if the image has no objects')
        with open(label_path, encoding='utf-8') as f:
            lines = f.read().splitlines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f'{label_path}:{lineno}'
            rec = parse_kitti_line(line, where)
            box = inclusive_to_xyxy([[rec['left'], rec['top'], rec['right'],
                                      rec['bottom']]])[0]
            # DontCare rows carry -1 / -10 placeholders: no attribute
            truncated = rec['truncated'] if rec['truncated'] >= 0 else math.nan
            occluded = rec['occluded'] if rec['occluded'] >= 0 else math.nan
            info['instances'].append(dict(
                bbox=box, source=rec['type'], where=where,
                truncated=truncated, occluded=float(occluded),
                area=(rec['right'] - rec['left'] + 1) *
                (rec['bottom'] - rec['top'] + 1)))
            info['kitti_records'].append(rec)
