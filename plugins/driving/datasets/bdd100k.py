"""BDD100K detection reader (Scalabel format: ``det_20`` JSON and the 2018
``bdd100k_labels_images_*.json``), parsed directly.

A label file is a list of frames (or ``{"frames": [...]}``, or a folder of
such files): ``name``, ``attributes`` (weather, scene, timeofday),
``timestamp`` (ms), optional ``intrinsics`` (focal, center) and ``labels``
(null or missing for an image without objects). Each label has
``category``, ``attributes`` (occluded, truncated, trafficLightColor) and
``box2d`` (x1, y1, x2, y2: first and last pixel, inclusive; converted to
pixel-edge by adding 1 to x2/y2).

Supported: box2d labels, frame attributes kept as meta (``weather``,
``scene``, ``timeofday``), per-label attributes in ``instance_attributes``
(one entry per box2d label in file order, before class mapping),
occluded/truncated as filter attributes, ``crowd: true`` as an ignore
region. Left out: labels without
``box2d`` (drivable area, lanes: poly2d; counted and reported at load),
box3d, the video tracking (box_track_20) frame grouping.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from mmengine.logging import print_log

from perception.data import BadSampleError
from perception.data.boxes import inclusive_to_xyxy
from perception.registry import DATASETS

from .base_det_dataset import DrivingDetDataset, image_size, load_json, numbers


def _frames_in(path: str) -> list[tuple[str, int, object]]:
    """(file, index, frame) for every frame in a Scalabel file or folder."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.endswith('.json'))
    elif os.path.isfile(path):
        files = [path]
    else:
        raise FileNotFoundError(
            f'Bdd100kDataset: ann_file {path} does not exist; point it at '
            'e.g. labels/det_20/det_train.json under data_root')
    out = []
    for file in files:
        content = load_json(file)
        if isinstance(content, dict):
            content = content.get('frames', [content])
        if not isinstance(content, list):
            raise ValueError(f'{file}: expected a list of frames or '
                             '{"frames": [...]}, got '
                             f'{type(content).__name__}')
        out.extend((file, i, frame) for i, frame in enumerate(content))
    return out


@DATASETS.register_module()
class Bdd100kDataset(DrivingDetDataset):
    """BDD100K 2D detection.

    Args:
        data_root: e.g. ``data/bdd100k``.
        ann_file: label JSON (``labels/det_20/det_train.json``) or a folder
            of per-image Scalabel JSON files.
        img_dir: image folder (``images/100k/train``).
        img_shape: (height, width) of every image, to skip reading image
            headers at load (BDD100K images are 720 x 1280); None reads them.
        **kwargs: :class:`~.base_det_dataset.DrivingDetDataset`
            arguments (class_map, filters, pipeline, on_bad_sample, ...).
    """

    default_class_map = 'bdd100k'

    def __init__(self, data_root: str = '', ann_file: str = '',
                 img_dir: str = 'images/100k/train',
                 img_shape: Sequence[int] | None = None, **kwargs) -> None:
        self.bdd_ann_file, self.img_dir = ann_file, img_dir
        self.img_shape = tuple(img_shape) if img_shape else None
        self.no_box2d = 0
        super().__init__(data_root=data_root, **kwargs)

    def sample_keys(self) -> list:
        self.no_box2d = 0
        return _frames_in(self.path(self.bdd_ann_file))

    def load_data_list(self) -> list[dict]:
        data = super().load_data_list()
        if self.no_box2d:
            print_log(f'Bdd100kDataset: {self.no_box2d} labels without box2d '
                      '(drivable area, lanes) are not detection labels and '
                      'were not used', logger='current')
        return data

    def parse_sample(self, key) -> dict:
        file, index, frame = key
        where = f'{file}: frame {index}'
        if not isinstance(frame, dict) or not isinstance(frame.get('name'),
                                                         str):
            raise BadSampleError(f"{where}: field 'name' (the image file) is "
                                 'missing or not a string')
        where = f"{where} ({frame['name']})"
        img_path = os.path.join(self.path(self.img_dir), frame['name'])
        if self.img_shape and not os.path.isfile(img_path):
            raise BadSampleError(f'{where}: its image {img_path} is missing; '
                                 'restore it or remove the frame')
        height, width = self.img_shape or image_size(img_path)
        attrs = frame.get('attributes') or {}
        info = dict(img_path=img_path, img_id=frame['name'], height=height,
                    width=width, frame_attributes=attrs, instances=[],
                    instance_attributes=[])
        for name in ('weather', 'scene', 'timeofday'):
            if name in attrs:
                info[name] = attrs[name]
        if frame.get('timestamp') is not None:
            info['timestamp_ns'] = int(frame['timestamp']) * 1_000_000
        if frame.get('videoName'):
            info['video_name'] = frame['videoName']
        intrinsics = frame.get('intrinsics')
        if intrinsics and intrinsics.get('focal') and intrinsics.get(
                'center'):
            (fx, fy), (cx, cy) = intrinsics['focal'], intrinsics['center']
            info['intrinsics'] = np.array([[fx, 0, cx], [0, fy, cy],
                                           [0, 0, 1]], np.float32)
        labels = frame.get('labels') or []
        if not isinstance(labels, list):
            raise BadSampleError(f"{where}: field 'labels' must be a list "
                                 f'or null, got {type(labels).__name__}')
        for j, label in enumerate(labels):
            self._add_label(label, f'{where}: labels[{j}]', info)
        return info

    def _add_label(self, label: dict, where: str, info: dict) -> None:
        if not isinstance(label, dict) or 'category' not in label:
            raise BadSampleError(f"{where}: field 'category' is missing")
        box = label.get('box2d')
        if box is None:
            self.no_box2d += 1
            return
        try:
            coords = numbers([box[k] for k in ('x1', 'y1', 'x2', 'y2')], 4,
                             where, 'box2d')
        except KeyError as exc:
            raise BadSampleError(f'{where}: box2d lacks field {exc}; '
                                 'expected x1, y1, x2, y2') from None
        except TypeError:
            raise BadSampleError(f'{where}: box2d must be an object of x1, '
                                 f'y1, x2, y2, got {box!r}') from None
        attrs = label.get('attributes') or {}
        x1, y1, x2, y2 = coords
        info['instances'].append(dict(
            bbox=inclusive_to_xyxy([coords])[0], source=label['category'],
            area=(x2 - x1 + 1) * (y2 - y1 + 1),
            where=f"{where} (id {label.get('id', '?')})",
            truncated=float(bool(attrs['truncated']))
            if 'truncated' in attrs else float('nan'),
            occluded=float(bool(attrs['occluded']))
            if 'occluded' in attrs else float('nan'),
            # Scalabel's crowd attribute: a group box, neither positive
            # nor negative (like COCO iscrowd)
            ignore=bool(attrs.get('crowd', False))))
        info['instance_attributes'].append(dict(attrs, id=label.get('id')))
