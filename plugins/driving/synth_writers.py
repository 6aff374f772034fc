"""Writers of synthetic drives, one per format the driving plugin reads.

* :func:`write_image_folder`: PNGs and a ``timestamps.csv`` sidecar
  (``filename,timestamp_ns``; ``docs/rig.md``).
* :func:`write_video`: H.264 MP4 through PyAV, presentation times exact.
* :func:`write_rig`: a rig YAML (``docs/rig.md``) over per-camera sources.
* :func:`write_bag`: a ROS 2 bag (``rosbags``) with ``sensor_msgs/Image``
  (rgb8), ``CompressedImage`` (JPEG) and ``CameraInfo`` per camera.
* :func:`write_kitti`: KITTI object ``image_2``/``label_2``/``calib``.
* :func:`write_bdd100k`: a BDD100K ``det_20`` (Scalabel) JSON.
* :func:`write_coco`: COCO detection JSON.
* :func:`write_nuimages`: nuImages JSON tables.

Boxes are pixel-edge xyxy in :class:`~.synth_labels.FrameLabels`; each
writer converts to its format's own convention (KITTI and BDD100K: first
and last pixel, inclusive; COCO: x, y, width, height; nuImages: xyxy).
Ignore regions use each format's own mechanism: KITTI ``DontCare``, COCO
``iscrowd: 1``, BDD100K's Scalabel attribute ``crowd: true``, and a
``synthetic.ignore`` attribute in nuImages, which has none.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from fractions import Fraction
from typing import Sequence

import numpy as np
import yaml

from perception.data.boxes import xyxy_to_inclusive, xyxy_to_xywh

from .synth_labels import FrameLabels, ObjectLabel
from .synth_scene import CameraModel

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


def write_image_folder(folder: str, images: Sequence[np.ndarray],
                       timestamps_ns: Sequence[int]) -> list[str]:
    """PNG files ``000000.png``... and ``timestamps.csv``; returns paths."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    paths = []
    with open(os.path.join(folder, 'timestamps.csv'), 'w', newline='',
              encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['filename', 'timestamp_ns'])
        for i, (img, t) in enumerate(zip(images, timestamps_ns)):
            name = f'{i:06d}.png'
            path = os.path.join(folder, name)
            Image.fromarray(img).save(path, compress_level=1)
            writer.writerow([name, int(t)])
            paths.append(path)
    return paths


def write_video(path: str, images: Sequence[np.ndarray], fps: float,
                crf: int = 18) -> str:
    """H.264 MP4; frame ``i`` has presentation time ``i / fps`` exactly
    (time base 1/90000 s)."""
    import av
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    height, width = images[0].shape[:2]
    tb = Fraction(1, 90000)
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=Fraction(fps).
                                      limit_denominator(1001))
        stream.width, stream.height = width, height
        stream.pix_fmt = 'yuv420p'
        stream.time_base = tb
        stream.codec_context.time_base = tb
        stream.options = {'preset': 'veryfast', 'crf': str(crf)}
        for i, img in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img),
                                               format='rgb24')
            frame.pts = int(round(i * 90000 / fps))
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def rig_camera_entry(cam: CameraModel, source: str, **extra) -> dict:
    """One camera of a rig YAML (``docs/rig.md``): pinhole, no distortion,
    camera-to-vehicle extrinsics."""
    K = cam.K
    entry = {'source': source, 'width': cam.width, 'height': cam.height,
             'intrinsics': {'fx': float(K[0, 0]), 'fy': float(K[1, 1]),
                            'cx': float(K[0, 2]), 'cy': float(K[1, 2])},
             'distortion': {'model': 'none', 'coeffs': []},
             'extrinsics': {
                 'translation': [round(float(v), 6) for v in cam.T_vc[:3, 3]],
                 'rotation_matrix': [[round(float(v), 12) for v in row]
                                     for row in cam.T_vc[:3, :3]]}}
    entry.update(extra)
    return entry


def write_rig(path: str, cameras: Sequence[CameraModel],
              sources: dict[str, str], name: str = 'synthetic_rig',
              tolerance_ms: float = 10.0) -> str:
    """A rig YAML naming each camera's source (paths relative to it)."""
    spec = {'name': name,
            'sync': {'tolerance_ms': tolerance_ms,
                     'reference': cameras[0].name, 'incomplete': 'drop'},
            'undistort': False,
            'cameras': {c.name: rig_camera_entry(c, sources[c.name])
                        for c in cameras}}
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(spec, f, sort_keys=False)
    return path


def write_bag(path: str, cameras: Sequence[CameraModel],
              images: dict[str, Sequence[np.ndarray]],
              timestamps_ns: Sequence[int], jpeg_quality: int = 92) -> str:
    """ROS 2 bag folder; per camera ``/<cam>/image_raw`` (rgb8),
    ``/<cam>/image_raw/compressed`` (jpeg) and ``/<cam>/camera_info``.
    Header stamps are the frame timestamps; log time is 1 ms later."""
    import cv2
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    if os.path.exists(path):
        shutil.rmtree(path)
    records = []
    with Writer(path, version=9) as writer:
        for cam in cameras:
            base = f'/{cam.name}'
            conns = {kind: writer.add_connection(f'{base}/{topic}', mtype,
                                                 typestore=ts)
                     for kind, topic, mtype in (
                         ('raw', 'image_raw', 'sensor_msgs/msg/Image'),
                         ('jpeg', 'image_raw/compressed',
                          'sensor_msgs/msg/CompressedImage'),
                         ('info', 'camera_info',
                          'sensor_msgs/msg/CameraInfo'))}
            for img, t in zip(images[cam.name], timestamps_ns):
                header = T['std_msgs/msg/Header'](
                    stamp=T['builtin_interfaces/msg/Time'](
                        sec=int(t) // 10**9, nanosec=int(t) % 10**9),
                    frame_id=cam.name)
                h, w = img.shape[:2]
                raw = T['sensor_msgs/msg/Image'](
                    header=header, height=h, width=w, encoding='rgb8',
                    is_bigendian=0, step=w * 3,
                    data=np.ascontiguousarray(img).ravel())
                ok, buf = cv2.imencode('.jpg', img[..., ::-1], [
                    cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                jpeg = T['sensor_msgs/msg/CompressedImage'](
                    header=header, format='jpeg',
                    data=np.frombuffer(buf.tobytes(), np.uint8))
                P = np.zeros((3, 4))
                P[:, :3] = cam.K
                info = T['sensor_msgs/msg/CameraInfo'](
                    header=header, height=h, width=w,
                    distortion_model='plumb_bob', d=np.zeros(5),
                    k=cam.K.ravel(), r=np.eye(3).ravel(), p=P.ravel(),
                    binning_x=0, binning_y=0,
                    roi=T['sensor_msgs/msg/RegionOfInterest'](
                        x_offset=0, y_offset=0, height=0, width=0,
                        do_rectify=False))
                for kind, msg in (('raw', raw), ('jpeg', jpeg),
                                  ('info', info)):
                    records.append((int(t) + 1_000_000, len(records),
                                    conns[kind], msg))
        for log_ns, _, conn, msg in sorted(records, key=lambda r: r[:2]):
            writer.write(conn, log_ns, ts.serialize_cdr(msg, msg.__msgtype__))
    return path


# -- label formats ----------------------------------------------------------

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
