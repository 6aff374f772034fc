"""ROS 1 and ROS 2 bags: ``sensor_msgs/Image`` and ``CompressedImage``.

Read through ``rosbags`` (pure Python, no ROS install) with the colour
conversions of ``rosbags-image``. Timestamps are the messages' header
stamps (``meta['clock'] == 'header'``); a message whose stamp is zero falls
back to the time the recorder logged it (``'arrival'``). Bayer images are
debayered to RGB; 16-bit images are scaled to uint8 unless ``raw=True``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from perception.registry import SOURCES
from perception.sources import Frame, FrameSource, SourceError, SourceOpener

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
ROS2_FILES = ('.db3', '.mcap')
# Encodings read without rosbags' generic fallback, by output kind.
MONO = ('mono8', 'mono16', '8UC1', '16UC1')


def bag_path(uri: str) -> Path | None:
    """The path rosbags opens for ``uri`` (a ROS 1 ``.bag`` file or a ROS 2
    bag folder), or None when ``uri`` is not a bag."""
    path = Path(uri)
    if path.suffix == '.bag':
        return path
    if path.name == 'metadata.yaml':
        return path.parent
    if path.suffix in ROS2_FILES and (path.parent / 'metadata.yaml').exists():
        return path.parent
    if path.is_dir() and (path / 'metadata.yaml').exists():
        return path
    return None


def decode_image_message(msg, raw: bool = False) -> np.ndarray:
    """``sensor_msgs/Image`` or ``CompressedImage`` -> RGB uint8 (H, W, 3),
    or with ``raw`` the native depth (mono stays (H, W); Bayer and colour
    become RGB at their own depth).

    Raises:
        ValueError: unsupported encoding or undecodable data (the message
            says which).
    """
    import cv2
    from rosbags.image.image import convert_color, to_cvtype
    if hasattr(msg, 'format'):  # CompressedImage
        data = np.frombuffer(msg.data, np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if image is None:
            raise ValueError(f"compressed image (format '{msg.format}') "
                             'cannot be decoded')
        if raw and image.dtype != np.uint8:
            return image if image.ndim == 2 else image[..., ::-1].copy()
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        return cv2.cvtColor(image, code)
    encoding = msg.encoding
    try:
        depth, _, typestr, nchan = to_cvtype(encoding)
    except Exception:
        raise ValueError(f"encoding '{encoding}' is not supported") from None
    dtype = np.dtype(typestr).newbyteorder('>' if msg.is_bigendian else '<')
    row = msg.width * nchan * dtype.itemsize
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(f'{msg.width}x{msg.height} {encoding} needs rows of '
                         f'{row} bytes; step is {msg.step} and data has '
                         f'{len(msg.data)} bytes')
    # Honour `step`: rows may be padded beyond width * pixel size.
    rows = np.frombuffer(msg.data, np.uint8)[:msg.step * msg.height]
    rows = rows.reshape(msg.height, msg.step)[:, :row]
    image = rows.copy().view(dtype).astype(dtype.newbyteorder('='))
    image = image.reshape((msg.height, msg.width, nchan) if nchan > 1
                          else (msg.height, msg.width))
    if raw and encoding in MONO:
        return image
    target = 'rgb16' if raw and depth == 16 else 'rgb8'
    if encoding in ('8UC1', '16UC1'):
        encoding = 'mono8' if encoding == '8UC1' else 'mono16'
    try:
        return np.ascontiguousarray(convert_color(image, encoding, target))
    except Exception as exc:
        raise ValueError(f"encoding '{msg.encoding}' cannot be converted to "
                         f'RGB ({exc})') from None


class BagSource(FrameSource):
    """Image messages of one or more topics of a ROS 1 or ROS 2 bag, in the
    order they were recorded.

    Args:
        uri: ROS 1 ``.bag`` file, ROS 2 bag folder, its ``metadata.yaml`` or
            its ``.db3`` / ``.mcap`` file.
        topic: topic name or names; optional when the bag has one image
            topic.
        camera: ``Frame.camera`` (default: the topic name).
        raw: native depth instead of RGB uint8.
        stride: every ``stride``-th message of each topic.
        timeout_s: accepted for API symmetry; files never wait.
    """

    def __init__(self, uri: str, topic: str | Sequence[str] | None = None,
                 camera: str | None = None, raw: bool = False,
                 stride: int = 1, timeout_s: float | None = None) -> None:
        super().__init__(uri, timeout_s)
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
        path = bag_path(uri)
        if path is None or not path.exists():
            raise SourceError(f'{uri}: no ROS bag here (a ROS 1 .bag file or '
                              'a ROS 2 folder with metadata.yaml)')
        if int(stride) < 1:
            raise ValueError(f'{uri}: stride must be >= 1, got {stride}')
        self.raw, self.stride, self.camera = raw, int(stride), camera
        try:
            self._reader = AnyReader(
                [path], default_typestore=get_typestore(Stores.LATEST))
            self._reader.open()
        except Exception as exc:
            raise SourceError(f'{uri}: cannot open the bag ({exc}); check '
                              'that it is complete (a bag still being '
                              'recorded has no index)') from exc
        images = {c.topic: c for c in self._reader.connections
                  if c.msgtype in IMAGE_TYPES}
        listing = ', '.join(f'{t} ({c.msgtype.split("/")[-1]})'
                            for t, c in sorted(images.items())) or 'none'
        if topic is None:
            if len(images) != 1:
                self._reader.close()
                raise SourceError(f'{uri}: the bag has {len(images)} image '
                                  f'topics ({listing}); choose with topic=')
            topics = list(images)
        else:
            topics = [topic] if isinstance(topic, str) else list(topic)
        unknown = [t for t in topics if t not in images]
        if unknown:
            others = sorted({c.topic for c in self._reader.connections})
            self._reader.close()
            raise SourceError(f"{uri}: topic '{unknown[0]}' has no image "
                              f'messages; image topics: {listing}; all '
                              f'topics: {", ".join(others)}')
        self.topics = topics
        self._connections = [c for c in self._reader.connections
                             if c.topic in topics]

    def _iter_frames(self) -> Iterator[Frame]:
        counts = {t: -1 for t in self.topics}
        reader = self._reader
        for connection, log_ns, rawdata in reader.messages(
                connections=self._connections):
            topic = connection.topic
            counts[topic] += 1
            index = counts[topic]
            if index % self.stride:
                continue
            try:
                msg = reader.deserialize(rawdata, connection.msgtype)
            except Exception as exc:
                self.emit('corrupt', f'{self.uri}: {topic} message {index} '
                          f'cannot be deserialised ({exc}); skipped')
                continue
            try:
                image = decode_image_message(msg, self.raw)
            except ValueError as exc:
                if 'not supported' in str(exc) or 'converted' in str(exc):
                    raise SourceError(
                        f'{self.uri}: {topic} message {index}: {exc}; '
                        'supported: mono8/16, rgb8/16, bgr8/16, rgba/bgra, '
                        'bayer_{rggb,bggr,gbrg,grbg}{8,16}, yuv422, '
                        'CompressedImage (jpeg/png)') from None
                self.emit('corrupt', f'{self.uri}: {topic} message {index}: '
                          f'{exc}; skipped')
                continue
            stamp = msg.header.stamp
            t_ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
            clock = 'header'
            if t_ns == 0:
                t_ns, clock = int(log_ns), 'arrival'
            yield Frame(image, t_ns, index, self.camera or topic,
                        {'clock': clock, 'topic': topic,
                         'frame_id': msg.header.frame_id,
                         'log_time_ns': int(log_ns),
                         'encoding': getattr(msg, 'encoding', None)
                         or getattr(msg, 'format', '')})
        self.emit('eos', f'{self.uri}: {sum(c + 1 for c in counts.values())} '
                  'messages')

    def _close(self) -> None:
        self._reader.close()


@SOURCES.register_module()
class BagOpener(SourceOpener):
    """ROS 1 ``.bag`` files and ROS 2 bag folders."""

    priority = 200

    def can_open(self, uri: str) -> bool:
        if '://' in uri:
            return False
        return uri.endswith('.bag') or bag_path(uri) is not None

    def open(self, uri: str, **options) -> FrameSource:
        return BagSource(os.fspath(uri), **options)
