"""Writers of a synthetic drive's labeled datasets, one per format the
driving plugin reads.

* :func:`write_kitti`: KITTI object ``image_2``/``label_2``/``calib``.
* :func:`write_bdd100k`: a BDD100K ``det_20`` (Scalabel) JSON.
* :func:`write_coco`: COCO detection JSON.
* :func:`write_nuimages`: nuImages JSON tables.

Boxes are pixel-edge xyxy in :class:`~.labels.FrameLabels`; each
writer converts to its format's own convention (KITTI and BDD100K: first
and last pixel, inclusive; COCO: x, y, width, height; nuImages: xyxy).
Ignore regions use each format's own mechanism: KITTI ``DontCare``, COCO
``iscrowd: 1``, BDD100K's Scalabel attribute ``crowd: true``, and a
``synthetic.ignore`` attribute in nuImages, which has none. Images are
placed into each layout with :func:`place_file` (hard links where allowed).
The sensor formats (image folders, video, rig, bag) are written by
:mod:`.sensor_writers`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Sequence

import numpy as np
import yaml

from perception.data.boxes import xyxy_to_inclusive, xyxy_to_xywh

from .labels import FrameLabels, ObjectLabel
from .scene import CameraModel

#: KITTI type names written for the unified classes (KITTI has no bus,
#: motorcycle, light or sign; its 'Cyclist' spans rider and bicycle).
KITTI_TYPES = {'car': 'Car', 'truck': 'Truck', 'bus': 'Bus',
               'pedestrian': 'Pedestrian', 'rider': 'Rider',
               'bicycle': 'Bicycle', 'motorcycle': 'Motorcycle',
               'traffic light': 'TrafficLight', 'traffic sign': 'TrafficSign',
               'train': 'Tram'}
NUIMAGES_CATEGORIES = {
    'car': 'vehicle.car', 'truck': 'vehicle.truck',
    'bus': 'vehicle.bus.rigid', 'pedestrian': 'human.pedestrian.adult',
    'rider': 'human.rider', 'bicycle': 'vehicle.bicycle',
    'motorcycle': 'vehicle.motorcycle', 'train': 'vehicle.train',
    'traffic light': 'static_object.traffic_light',
    'traffic sign': 'static_object.traffic_sign'}
NUIMAGES_CHANNELS = {'front': 'CAM_FRONT', 'front_left': 'CAM_FRONT_LEFT',
                     'front_right': 'CAM_FRONT_RIGHT'}


def place_file(src: str, dst: str) -> None:
    """Hard-link ``src`` to ``dst`` (a copy where links are not allowed)."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.exists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _inclusive(box) -> list[float]:
    """KITTI / BDD100K first and last pixel of a pixel-edge box."""
    return xyxy_to_inclusive([box])[0].tolist()


def kitti_line(obj: ObjectLabel) -> str:
    """One KITTI label line (devkit readme: 15 values)."""
    left, top, right, bottom = _inclusive(obj.bbox)
    box = f'{left:.2f} {top:.2f} {right:.2f} {bottom:.2f}'
    if obj.ignore:
        return f'DontCare -1 -1 -10 {box} -1 -1 -1 -1000 -1000 -1000 -10'
    occluded = 0 if obj.occlusion < 0.1 else (1 if obj.occlusion < 0.5
                                              else 2)
    h, w, length = obj.dims
    x, y, z = obj.location
    return (f'{KITTI_TYPES[obj.category]} {obj.truncation:.2f} {occluded} '
            f'{obj.alpha:.2f} {box} {h:.2f} {w:.2f} {length:.2f} '
            f'{x:.2f} {y:.2f} {z:.2f} {obj.rotation_y:.2f}')


def write_kitti(root: str, items: Sequence[tuple[str, str, FrameLabels]]
                ) -> str:
    """``root/training/{image_2,label_2,calib}`` and ``root/class_map.yaml``
    (our type names -> the unified taxonomy, for ``KittiDataset``).

    Args:
        items: (sample id, image path, labels) per image.
    """
    train = os.path.join(root, 'training')
    for sub in ('image_2', 'label_2', 'calib'):
        os.makedirs(os.path.join(train, sub), exist_ok=True)
    for key, img, labels in items:
        place_file(img, os.path.join(train, 'image_2', key + '.png'))
        with open(os.path.join(train, 'label_2', key + '.txt'), 'w',
                  encoding='utf-8') as f:
            f.writelines(kitti_line(o) + '\n' for o in labels.objects)
        P = np.zeros((3, 4))
        P[:, :3] = np.asarray(labels.intrinsics)
        flat = ' '.join(f'{v:.12e}' for v in P.ravel())
        eye3 = ' '.join(f'{v:.12e}' for v in np.eye(3).ravel())
        zero34 = ' '.join(f'{v:.12e}' for v in np.eye(3, 4).ravel())
        with open(os.path.join(train, 'calib', key + '.txt'), 'w',
                  encoding='utf-8') as f:
            for k in range(4):
                f.write(f'P{k}: {flat}\n')
            f.write(f'R0_rect: {eye3}\nTr_velo_to_cam: {zero34}\n'
                    f'Tr_imu_to_velo: {zero34}\n')
    class_map = {'source': 'perception synth-drive (KITTI layout with '
                           'extra type names)',
                 'map': dict({v: k for k, v in KITTI_TYPES.items()},
                             DontCare='ignore')}
    with open(os.path.join(root, 'class_map.yaml'), 'w',
              encoding='utf-8') as f:
        yaml.safe_dump(class_map, f, sort_keys=False)
    return root


def write_bdd100k(path: str, items: Sequence[tuple[str, FrameLabels]],
                  weather: str, timeofday: str,
                  video_name: str = 'synthetic') -> str:
    """A det_20 JSON list of frames (Scalabel format)."""
    frames = []
    for name, labels in items:
        K = np.asarray(labels.intrinsics)
        frames.append({
            'name': name, 'videoName': video_name,
            'timestamp': labels.timestamp_ns // 1_000_000,
            'attributes': {'weather': weather, 'scene': 'city street',
                           'timeofday': timeofday},
            'intrinsics': {'focal': [K[0, 0], K[1, 1]],
                           'center': [K[0, 2], K[1, 2]]},
            'labels': [{
                'id': str(o.obj_id), 'category': o.category,
                'attributes': dict({'occluded': o.occlusion >= 0.1,
                                    'truncated': o.truncation > 0.0,
                                    'crowd': o.ignore}, **o.attributes),
                'manualShape': False, 'manualAttributes': False,
                'box2d': dict(zip(('x1', 'y1', 'x2', 'y2'),
                                  _inclusive(o.bbox)))}
                for o in labels.objects] or None})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(frames, f, indent=1)
    return path


def write_coco(path: str, items: Sequence[tuple[str, FrameLabels]],
               classes: Sequence[str]) -> str:
    """COCO detection JSON; categories are the unified classes (ids from 1
    in taxonomy order); ignore regions are ``iscrowd: 1``."""
    images, anns = [], []
    for i, (name, labels) in enumerate(items, 1):
        images.append({'id': i, 'file_name': name, 'width': labels.width,
                       'height': labels.height,
                       'timestamp_ns': labels.timestamp_ns})
        for o in labels.objects:
            anns.append({'id': len(anns) + 1, 'image_id': i,
                         'category_id': classes.index(o.category) + 1,
                         'bbox': xyxy_to_xywh([o.bbox])[0].tolist(),
                         'area': float(o.visible_px),
                         'iscrowd': int(o.ignore), 'segmentation': []})
    data = {'info': {'description': 'perception synth-drive',
                     'version': '1.0'},
            'licenses': [], 'images': images, 'annotations': anns,
            'categories': [{'id': k + 1, 'name': c, 'supercategory':
                            'driving'} for k, c in enumerate(classes)]}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(data, f)
    return path


def _token(*parts) -> str:
    return hashlib.md5('/'.join(map(str, parts)).encode()).hexdigest()


def rotation_to_quaternion(R: np.ndarray) -> list[float]:
    """(w, x, y, z) of a rotation matrix (nuScenes convention)."""
    R = np.asarray(R, np.float64)
    w = np.sqrt(max(0.0, 1.0 + np.trace(R))) / 2
    x = np.sqrt(max(0.0, 1.0 + R[0, 0] - R[1, 1] - R[2, 2])) / 2
    y = np.sqrt(max(0.0, 1.0 - R[0, 0] + R[1, 1] - R[2, 2])) / 2
    z = np.sqrt(max(0.0, 1.0 - R[0, 0] - R[1, 1] + R[2, 2])) / 2
    x = np.copysign(x, R[2, 1] - R[1, 2])
    y = np.copysign(y, R[0, 2] - R[2, 0])
    z = np.copysign(z, R[1, 0] - R[0, 1])
    return [float(v) for v in (w, x, y, z)]


def write_nuimages(root: str, cameras: Sequence[CameraModel],
                   items: Sequence[tuple[str, str, FrameLabels]],
                   ego_poses: Sequence[tuple], version: str = 'v1.0-mini'
                   ) -> str:
    """nuImages tables under ``root/<version>/`` and images under
    ``root/samples/<CHANNEL>/``, plus ``root/class_map.yaml``.

    Args:
        items: (camera name, image path, labels) per image.
        ego_poses: per frame (translation xyz, rotation wxyz) in a world
            frame with z up.
    """
    tables: dict[str, list] = {k: [] for k in (
        'log', 'sensor', 'calibrated_sensor', 'ego_pose', 'sample',
        'sample_data', 'category', 'attribute', 'object_ann',
        'surface_ann')}
    log = _token('log')
    tables['log'].append({'token': log, 'logfile': 'synthetic',
                          'vehicle': 'synthetic', 'date_captured':
                          '2026-01-01', 'location': 'synthetic-city'})
    for cls, name in NUIMAGES_CATEGORIES.items():
        tables['category'].append({'token': _token('cat', name),
                                   'name': name, 'description': cls})
    ignore_attr = _token('attr', 'synthetic.ignore')
    tables['attribute'].append({
        'token': ignore_attr, 'name': 'synthetic.ignore', 'description':
        'ignore region: too small or too occluded to train or score on'})
    for cam in cameras:
        channel = NUIMAGES_CHANNELS[cam.name]
        tables['sensor'].append({'token': _token('sensor', channel),
                                 'channel': channel, 'modality': 'camera'})
        tables['calibrated_sensor'].append({
            'token': _token('cs', channel),
            'sensor_token': _token('sensor', channel),
            'translation': [float(v) for v in cam.T_vc[:3, 3]],
            'rotation': rotation_to_quaternion(cam.T_vc[:3, :3]),
            'camera_intrinsic': cam.K.tolist(),
            'camera_distortion': [0.0] * 5})
    for i, (trans, rot, t_ns) in enumerate(ego_poses):
        tables['ego_pose'].append({
            'token': _token('ego', i), 'translation': list(trans),
            'rotation': list(rot), 'timestamp': t_ns // 1000,
            'rotation_rate': [0.0] * 3, 'acceleration': [0.0] * 3,
            'speed': 0.0})
    for cam_name, img, labels in items:
        channel = NUIMAGES_CHANNELS[cam_name]
        sd = _token('sd', channel, labels.frame)
        sample = _token('sample', channel, labels.frame)
        filename = f'samples/{channel}/{labels.frame:06d}.png'
        place_file(img, os.path.join(root, filename))
        tables['sample'].append({'token': sample, 'timestamp':
                                 labels.timestamp_ns // 1000,
                                 'log_token': log, 'key_camera_token': sd})
        tables['sample_data'].append({
            'token': sd, 'sample_token': sample,
            'ego_pose_token': _token('ego', labels.frame),
            'calibrated_sensor_token': _token('cs', channel),
            'filename': filename, 'fileformat': 'png',
            'width': labels.width, 'height': labels.height,
            'timestamp': labels.timestamp_ns // 1000, 'is_key_frame': True,
            'prev': '', 'next': ''})
        for o in labels.objects:
            tables['object_ann'].append({
                'token': _token('ann', sd, o.obj_id), 'sample_data_token': sd,
                'category_token': _token('cat',
                                         NUIMAGES_CATEGORIES[o.category]),
                'attribute_tokens': [ignore_attr] if o.ignore else [],
                'bbox': [int(v) for v in o.bbox], 'mask': None})
    folder = os.path.join(root, version)
    os.makedirs(folder, exist_ok=True)
    for name, rows in tables.items():
        with open(os.path.join(folder, f'{name}.json'), 'w',
                  encoding='utf-8') as f:
            json.dump(rows, f, indent=0)
    class_map = {'source': 'perception synth-drive (nuImages tables with '
                           'extra categories)',
                 'map': {v: k for k, v in NUIMAGES_CATEGORIES.items()}}
    with open(os.path.join(root, 'class_map.yaml'), 'w',
              encoding='utf-8') as f:
        yaml.safe_dump(class_map, f, sort_keys=False)
    return root
