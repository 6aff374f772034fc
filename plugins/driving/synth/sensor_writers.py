"""Writers of a synthetic drive's sensor data, as the driving plugin's
sources read it.

* :func:`write_image_folder`: PNGs and a ``timestamps.csv`` sidecar
  (``filename,timestamp_ns``; ``docs/rig.md``).
* :func:`write_video`: H.264 MP4 through PyAV, presentation times exact.
* :func:`write_rig`: a rig YAML (``docs/rig.md``) over per-camera sources.
* :func:`write_bag`: a ROS 2 bag (``rosbags``) with ``sensor_msgs/Image``
  (rgb8), ``CompressedImage`` (JPEG) and ``CameraInfo`` per camera.

The labeled dataset formats are written by :mod:`.label_writers`.
"""
from __future__ import annotations

import csv
import os
import shutil
from fractions import Fraction
from typing import Sequence

import numpy as np
import yaml

from .scene import CameraModel


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
