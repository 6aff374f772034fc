"""nuImages and nuScenes camera reader (relational JSON tables under
``data_root/<version>/``), parsed directly, no devkit.

* nuImages (``object_ann.json`` present): every key-frame camera image with
  its ``object_ann`` 2D boxes (``bbox`` = [xmin, ymin, xmax, ymax], taken as
  pixel-edge xyxy), category names, attribute names.
* nuScenes (``sample_annotation.json`` present): every key-frame camera
  image with the 3D boxes of its sample projected to 2D: box corners in the
  global frame -> ego (``ego_pose``) -> camera (``calibrated_sensor``) ->
  pixels (``camera_intrinsic``), corners behind the camera dropped, the
  convex hull clipped to the image and its bounds taken, as the devkit's
  ``export_2d_annotations_as_json`` does. ``visibility`` levels feed the
  ``min_visibility`` filter.

Supported: camera channel selection, intrinsics, timestamps (µs -> ns),
visibility, attribute names (``instance_attributes``: one list per box
seen by the camera, before class mapping). Left out: instance masks and surface annotations
(nuImages), lidar/radar, non-key-frame sweeps, lens distortion (nuScenes
images are undistorted; CAM_BACK fish-eye parameters of nuImages are
ignored), the nuScenes lidarseg/panoptic files.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Sequence

import numpy as np

from perception.data import BadSampleError
from perception.registry import DATASETS

from .base_det_dataset import DrivingDetDataset, load_json, numbers
from .box_filters import NUSCENES_VISIBILITY


def quaternion_matrix(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a (w, x, y, z) quaternion (normalised first)."""
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def box_corners(center, size, rotation) -> np.ndarray:
    """(3, 8) corners of a nuScenes box: ``size`` = (width, length, height),
    x along the length (devkit ``Box.corners`` order)."""
    width, length, height = size
    x = length / 2 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
    y = width / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    z = height / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    return quaternion_matrix(rotation) @ np.vstack([x, y, z]) + np.reshape(
        center, (3, 1))


def _hull(points: np.ndarray) -> list:
    pts = sorted(set(map(tuple, points)))
    if len(pts) < 3:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def _clip_polygon(poly: list, width: float, height: float) -> list:
    """Sutherland-Hodgman clip of a polygon to [0, width] x [0, height]."""
    edges = [(0, 0.0, 1), (0, width, -1), (1, 0.0, 1), (1, height, -1)]
    for axis, bound, sign in edges:
        if not poly:
            break
        out = []
        for i, cur in enumerate(poly):
            prev = poly[i - 1]
            cur_in = sign * (cur[axis] - bound) >= 0
            prev_in = sign * (prev[axis] - bound) >= 0
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]),
                            prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
        poly = out
    return poly


def project_box(corners_cam: np.ndarray, intrinsic: np.ndarray,
                width: int, height: int) -> np.ndarray | None:
    """Image box of 3D corners in camera coordinates, or None if the box is
    behind the camera or outside the image."""
    front = corners_cam[:, corners_cam[2] > 0]
    if front.shape[1] == 0:
        return None
    pix = intrinsic @ front
    pix = (pix[:2] / pix[2:3]).T
    hull = _hull(pix) if len(pix) >= 3 else [tuple(p) for p in pix]
    clipped = _clip_polygon(hull, float(width), float(height))
    if len(clipped) < 3:
        return None
    arr = np.asarray(clipped)
    box = np.concatenate([arr.min(0), arr.max(0)]).astype(np.float32)
    return box if box[2] > box[0] and box[3] > box[1] else None


class _Tables:
    """The JSON tables of one version folder, with named-field access."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._cache: dict = {}

    def exists(self, table: str) -> bool:
        return os.path.isfile(os.path.join(self.folder, f'{table}.json'))

    def rows(self, table: str) -> list:
        if table not in self._cache:
            path = os.path.join(self.folder, f'{table}.json')
            if not os.path.isfile(path):
                raise FileNotFoundError(f'nuScenes/nuImages table {table} is '
                                        f'missing: {path}')
            rows = load_json(path)
            if not isinstance(rows, list):
                raise ValueError(f'{path}: table {table} must be a JSON list')
            self._cache[table] = rows
        return self._cache[table]

    def index(self, table: str) -> dict:
        key = table + '#index'
        if key not in self._cache:
            self._cache[key] = {self.field(r, table, 'token', i): r
                                for i, r in enumerate(self.rows(table))}
        return self._cache[key]

    def field(self, row: dict, table: str, name: str, i=None):
        if not isinstance(row, dict) or name not in row:
            at = f' record {i}' if i is not None else (
                f" record {row.get('token', '?')}" if isinstance(row, dict)
                else '')
            raise ValueError(f'{self.folder}/{table}.json:{at} lacks field '
                             f"'{name}' (schema drift? see the nuScenes/"
                             'nuImages schema)')
        return row[name]

    def get(self, table: str, token: str, where: str) -> dict:
        try:
            return self.index(table)[token]
        except KeyError:
            raise BadSampleError(f'{where}: token {token} not found in table '
                                 f'{table}') from None


@DATASETS.register_module()
class NuImagesDataset(DrivingDetDataset):
    """nuImages 2D boxes or nuScenes 3D boxes projected to camera images.

    Args:
        data_root: folder holding ``<version>/`` and the image ``samples/``.
        version: table folder, e.g. ``v1.0-mini`` or ``v1.0-train``.
        mode: 'nuimages', 'nuscenes' or 'auto' (by which tables exist).
        cameras: channels to keep (e.g. ``['CAM_FRONT']``); default all.
        class_map: default ``'nuimages'`` or ``'nuscenes'`` by mode.
        **kwargs: :class:`~.base_det_dataset.DrivingDetDataset`
            arguments (filters, pipeline, on_bad_sample, ...).
    """

    def __init__(self, data_root: str = '', version: str = 'v1.0-mini',
                 mode: str = 'auto', cameras: Sequence[str] | None = None,
                 class_map=None, **kwargs) -> None:
        if mode not in ('auto', 'nuimages', 'nuscenes'):
            raise ValueError(f"mode must be 'auto', 'nuimages' or "
                             f"'nuscenes', got {mode!r}")
        self.tables = _Tables(os.path.join(data_root, version))
        if mode == 'auto':
            if self.tables.exists('object_ann'):
                mode = 'nuimages'
            elif self.tables.exists('sample_annotation'):
                mode = 'nuscenes'
            else:
                raise FileNotFoundError(
                    f'NuImagesDataset: {self.tables.folder} holds neither '
                    'object_ann.json (nuImages) nor sample_annotation.json '
                    '(nuScenes); check data_root and version')
        self.mode = mode
        self.cameras = set(cameras) if cameras else None
        super().__init__(data_root=data_root,
                         class_map=class_map or mode, **kwargs)

    def _camera(self, sd: dict) -> tuple[str, dict]:
        t = self.tables
        cs = t.get('calibrated_sensor',
                   t.field(sd, 'sample_data', 'calibrated_sensor_token'),
                   f"sample_data {sd['token']}")
        sensor = t.get('sensor', t.field(cs, 'calibrated_sensor',
                                         'sensor_token'),
                       f"calibrated_sensor {cs['token']}")
        return t.field(sensor, 'sensor', 'channel'), cs

    def sample_keys(self) -> list:
        t = self.tables
        keys = []
        if self.mode == 'nuimages':
            anns = defaultdict(list)
            for i, ann in enumerate(t.rows('object_ann')):
                anns[t.field(ann, 'object_ann', 'sample_data_token', i)
                     ].append(ann)
        else:
            anns = defaultdict(list)
            for i, ann in enumerate(t.rows('sample_annotation')):
                anns[t.field(ann, 'sample_annotation', 'sample_token', i)
                     ].append(ann)
        self._skip_dangling(anns)
        for i, sd in enumerate(t.rows('sample_data')):
            t.field(sd, 'sample_data', 'token', i)
            if not t.field(sd, 'sample_data', 'is_key_frame', i):
                continue
            if t.field(sd, 'sample_data', 'fileformat', i) not in (
                    'jpg', 'jpeg', 'png'):
                continue
            channel, cs = self._camera(sd)
            if self.cameras is not None and channel not in self.cameras:
                continue
            own = (sd['token'] if self.mode == 'nuimages'
                   else t.field(sd, 'sample_data', 'sample_token', i))
            keys.append((sd, channel, cs, anns.get(own, [])))
        return keys

    def _skip_dangling(self, anns: dict) -> None:
        """Annotations whose sample_data (nuImages) or sample (nuScenes)
        token is in no table are bad records, not silently unused."""
        t = self.tables
        if self.mode == 'nuimages':
            table, field = 'object_ann', 'sample_data_token'
            known = set(t.index('sample_data'))
        else:
            table, field = 'sample_annotation', 'sample_token'
            known = (set(t.index('sample')) if t.exists('sample') else
                     {sd.get('sample_token') for sd in t.rows('sample_data')})
        for token in sorted(set(anns) - known, key=str):
            for ann in anns.pop(token):
                self.skip_bad(BadSampleError(
                    f"{t.folder}/{table}.json: token {ann.get('token')}: "
                    f'{field} {token} is not in any table (dangling); fix or '
                    'delete the annotation'))

    def parse_sample(self, key) -> dict:
        sd, channel, cs, anns = key
        t = self.tables
        where = f'{t.folder}/sample_data.json: token {sd["token"]}'
        intrinsic = np.asarray(t.field(cs, 'calibrated_sensor',
                                       'camera_intrinsic'), np.float64)
        if intrinsic.shape != (3, 3):
            raise BadSampleError(f"{t.folder}/calibrated_sensor.json: token "
                                 f"{cs['token']}: camera_intrinsic must be "
                                 f'3x3, got shape {intrinsic.shape}')
        info = dict(img_path=self.path(t.field(sd, 'sample_data',
                                               'filename')),
                    img_id=sd['token'], camera=channel,
                    height=int(t.field(sd, 'sample_data', 'height')),
                    width=int(t.field(sd, 'sample_data', 'width')),
                    intrinsics=intrinsic.astype(np.float32),
                    instances=[], instance_attributes=[])
        if sd.get('timestamp') is not None:
            info['timestamp_ns'] = int(sd['timestamp']) * 1000
        if self.mode == 'nuimages':
            self._nuimages_boxes(anns, info)
        else:
            self._nuscenes_boxes(sd, cs, intrinsic, anns, info, where)
        return info

    def _rotation(self, value, where: str) -> list[float]:
        q = numbers(value, 4, where, 'rotation (w, x, y, z)')
        if not any(q):
            raise BadSampleError(f'{where}: rotation is the zero quaternion')
        return q

    def _pose(self, row: dict, table: str) -> tuple[np.ndarray, np.ndarray]:
        """Rotation and (3, 1) translation of an ego_pose or
        calibrated_sensor record, checked."""
        where = f"{self.tables.folder}/{table}.json: token {row.get('token')}"
        rotation = self._rotation(self.tables.field(row, table, 'rotation'),
                                  where)
        translation = numbers(self.tables.field(row, table, 'translation'),
                              3, where, 'translation')
        return quaternion_matrix(rotation), np.reshape(translation, (3, 1))

    def _attribute_names(self, ann: dict, table: str) -> list[str]:
        return [self.tables.get('attribute', tok,
                                f"{table} {ann['token']}")['name']
                for tok in ann.get('attribute_tokens') or []]

    def _nuimages_boxes(self, anns: list, info: dict) -> None:
        t = self.tables
        for ann in anns:
            where = f"{t.folder}/object_ann.json: token {ann.get('token')}"
            cat = t.get('category', t.field(ann, 'object_ann',
                                            'category_token'), where)
            bbox = numbers(t.field(ann, 'object_ann', 'bbox'), 4, where,
                           'bbox [xmin, ymin, xmax, ymax]')
            info['instances'].append(dict(
                bbox=np.asarray(bbox, np.float32), where=where,
                area=(bbox[2] - bbox[0]) * (bbox[3] - bbox[1]),
                source=t.field(cat, 'category', 'name')))
            info['instance_attributes'].append(
                self._attribute_names(ann, 'object_ann'))

    def _nuscenes_boxes(self, sd, cs, intrinsic, anns, info, where) -> None:
        t = self.tables
        pose = t.get('ego_pose', t.field(sd, 'sample_data', 'ego_pose_token'),
                     where)
        ego_r, ego_t = self._pose(pose, 'ego_pose')
        cam_r, cam_t = self._pose(cs, 'calibrated_sensor')
        for ann in anns:
            awhere = (f"{t.folder}/sample_annotation.json: token "
                      f"{ann.get('token')}")
            field = lambda name: t.field(ann, 'sample_annotation', name)  # noqa
            corners = box_corners(
                numbers(field('translation'), 3, awhere, 'translation'),
                numbers(field('size'), 3, awhere,
                        'size (width, length, height)', positive=True),
                self._rotation(field('rotation'), awhere))
            corners = cam_r.T @ (ego_r.T @ (corners - ego_t) - cam_t)
            box = project_box(corners, intrinsic, info['width'],
                              info['height'])
            if box is None:  # not seen by this camera
                continue
            inst = t.get('instance', t.field(ann, 'sample_annotation',
                                             'instance_token'), awhere)
            cat = t.get('category', t.field(inst, 'instance',
                                            'category_token'), awhere)
            visibility = float('nan')
            if ann.get('visibility_token'):
                level = t.get('visibility', ann['visibility_token'],
                              awhere).get('level')
                visibility = NUSCENES_VISIBILITY.get(level, float('nan'))
            info['instances'].append(dict(
                bbox=box, source=t.field(cat, 'category', 'name'),
                where=awhere, visibility=visibility))
            info['instance_attributes'].append(
                self._attribute_names(ann, 'sample_annotation'))
