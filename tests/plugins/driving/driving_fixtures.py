"""Writers and fixtures shared by the driving-plugin tests (import them with
``from driving_fixtures import ...``; conftest.py puts this folder on the
path and exposes the fixtures): coded test frames, a PyAV video writer,
image folders with sidecar CSVs, ROS bags and rig YAMLs (the test servers
are in driving_servers.py).

Every test frame carries its number: the top half holds red, green and blue
stripes (checks channel order), the bottom half ``CODE_BITS`` black/white
blocks with the frame number in binary, readable after lossy compression
by :func:`frame_code`.
"""
from __future__ import annotations

import csv
import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

CODE_BITS = 8


def coded_frame(number: int, height: int = 96, width: int = 128
                ) -> np.ndarray:
    """RGB uint8 (height, width, 3): RGB stripes on top, ``number`` in
    binary blocks below."""
    image = np.zeros((height, width, 3), np.uint8)
    half, third = height // 2, width // 3
    image[:half, :third, 0] = 255
    image[:half, third:2 * third, 1] = 255
    image[:half, 2 * third:, 2] = 255
    block = width // CODE_BITS
    for bit in range(CODE_BITS):
        if (number >> bit) & 1:
            image[half:, bit * block:(bit + 1) * block] = 255
    return image


def frame_code(image: np.ndarray) -> int:
    """The number :func:`coded_frame` drew into ``image`` (any size)."""
    height, width = image.shape[:2]
    half, block = height // 2, width // CODE_BITS
    gray = image.astype(np.float32).mean(axis=-1) if image.ndim == 3 else image
    number = 0
    for bit in range(CODE_BITS):
        cell = gray[half + 4:height - 4, bit * block + 3:(bit + 1) * block - 3]
        if cell.mean() > 127:
            number |= 1 << bit
    return number


def stripes_are_rgb(image: np.ndarray) -> bool:
    """True when the top stripes read red, green, blue (not BGR)."""
    height, width = image.shape[:2]
    third, y = width // 3, height // 4
    cells = [image[y - 4:y + 4, x + 4:x + third - 4].reshape(-1, 3).mean(0)
             for x in (0, third, 2 * third)]
    return all(int(np.argmax(c)) == k and c[k] > 180
               for k, c in enumerate(cells))


def write_video(path: str | os.PathLike, n: int = 30, fps: int = 10,
                size: tuple[int, int] = (128, 96), codec: str = 'libx264',
                times_s: Sequence[float] | None = None,
                first: int = 0, options: dict | None = None,
                numbers: Sequence[int] | None = None) -> Path:
    """Write ``n`` coded frames with PyAV (numbered ``first + i``, or
    ``numbers[i]``). ``times_s`` gives variable frame times (seconds, a
    millisecond time base); else a constant ``fps``."""
    import av
    path = Path(path)
    width, height = size
    with av.open(str(path), 'w') as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = 'yuvj420p' if codec == 'mjpeg' else 'yuv420p'
        stream.options = dict({'preset': 'ultrafast'} if codec == 'libx264'
                              else {}, **(options or {}))
        if times_s is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n):
            number = first + i if numbers is None else numbers[i]
            frame = av_frame(coded_frame(number, height, width))
            if times_s is not None:
                frame.pts = int(round(times_s[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def av_frame(rgb: np.ndarray):
    import av
    return av.VideoFrame.from_ndarray(rgb, format='rgb24')


def write_image_folder(folder: str | os.PathLike, n: int = 5,
                       times_ns: Sequence[int] | None = None,
                       bits: int = 8, size: tuple[int, int] = (64, 48),
                       suffix: str = '.png') -> Path:
    """``n`` coded frames named 000000.png...; a ``timestamps.csv`` sidecar
    (filename,timestamp_ns) when ``times_ns`` is given. 16-bit images are
    single-channel uint16 (value * 257)."""
    import cv2
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    for i in range(n):
        rgb = coded_frame(i, height, width)
        if bits == 16:
            image = rgb.mean(-1).astype(np.uint16) * 257
        else:
            image = rgb[..., ::-1]
        cv2.imwrite(str(folder / f'{i:06d}{suffix}'), image)
    if times_ns is not None:
        with open(folder / 'timestamps.csv', 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['filename', 'timestamp_ns'])
            for i, t in enumerate(times_ns):
                writer.writerow([f'{i:06d}{suffix}', int(t)])
    return folder


@pytest.fixture
def small_video(tmp_path) -> Path:
    """30 coded 128x96 frames at 10 fps, H.264 in MP4."""
    return write_video(tmp_path / 'small.mp4', n=30, fps=10)


# -- ROS bags ---------------------------------------------------------------
def ros_typestore():
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_HUMBLE)


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """An RGGB Bayer mosaic (H, W) of an RGB image (same depth)."""
    bayer = np.zeros(rgb.shape[:2], rgb.dtype)
    bayer[0::2, 0::2] = rgb[0::2, 0::2, 0]
    bayer[0::2, 1::2] = rgb[0::2, 1::2, 1]
    bayer[1::2, 0::2] = rgb[1::2, 0::2, 1]
    bayer[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return bayer


def image_message(stamp_ns: int, array: np.ndarray | bytes, encoding: str,
                  frame_id: str = 'camera', pad: int = 0):
    """A sensor_msgs/Image (``array`` of any dtype, rows padded by ``pad``
    bytes) or, with ``encoding`` 'jpeg'/'png', a CompressedImage of
    ``array`` (RGB) or of ready ``bytes``."""
    ts = ros_typestore()
    header = ts.types['std_msgs/msg/Header'](
        stamp=ts.types['builtin_interfaces/msg/Time'](
            sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
        frame_id=frame_id)
    if encoding in ('jpeg', 'png'):
        if isinstance(array, bytes):
            data = array
        else:
            import cv2
            ok, buf = cv2.imencode('.' + encoding, array[..., ::-1]
                                   if array.ndim == 3 else array)
            data = buf.tobytes()
        return ts.types['sensor_msgs/msg/CompressedImage'](
            header=header, format=encoding,
            data=np.frombuffer(data, np.uint8))
    height, width = array.shape[:2]
    rows = array.reshape(height, -1).view(np.uint8)
    if pad:
        rows = np.concatenate([rows, np.full((height, pad), 7, np.uint8)], 1)
    return ts.types['sensor_msgs/msg/Image'](
        header=header, height=height, width=width, encoding=encoding,
        is_bigendian=0, step=rows.shape[1],
        data=np.ascontiguousarray(rows).ravel())


def write_bag(path: str | os.PathLike, version: str,
              topics: dict[str, list]) -> Path:
    """Write ``{topic: [messages]}`` to a ROS 1 ``.bag`` (``version='ros1'``)
    or a ROS 2 bag folder (``'ros2'``); log time = header stamp + 1 ms."""
    ts = ros_typestore()
    path = Path(path)
    if version == 'ros1':
        from rosbags.rosbag1 import Writer
        writer, serialize = Writer(path), ts.serialize_ros1
    else:
        from rosbags.rosbag2 import Writer
        writer, serialize = Writer(path, version=9), ts.serialize_cdr
    with writer:
        records = []
        for topic, messages in topics.items():
            conn = writer.add_connection(topic, messages[0].__msgtype__,
                                         typestore=ts)
            for msg in messages:
                stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
                records.append((stamp + 1_000_000, conn, msg))
        for log_ns, conn, msg in sorted(records, key=lambda r: r[0]):
            writer.write(conn, log_ns, serialize(msg, msg.__msgtype__))
    return path


def camera_yaml(source: str, width: int, height: int, **extra) -> dict:
    """One camera entry of a rig YAML (pinhole, plumb_bob, forward-looking
    camera 1.5 m ahead of and 1.4 m above the vehicle origin)."""
    spec = {
        'source': source, 'width': width, 'height': height,
        'intrinsics': {'fx': 0.9 * width, 'fy': 0.9 * width,
                       'cx': (width - 1) / 2, 'cy': (height - 1) / 2},
        'distortion': {'model': 'plumb_bob',
                       'coeffs': [-0.25, 0.08, 0.001, -0.0005, 0.0]},
        'extrinsics': {'translation': [1.5, 0.0, 1.4],
                       'rotation_matrix': [[0, 0, 1], [-1, 0, 0],
                                           [0, -1, 0]]}}
    spec.update(extra)
    return spec


def write_rig(path: str | os.PathLike, cameras: dict[str, dict],
              **top) -> Path:
    import yaml
    path = Path(path)
    path.write_text(yaml.safe_dump(dict(top, cameras=cameras),
                                   sort_keys=False))
    return path
