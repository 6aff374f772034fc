"""Display orientation of a video: the display matrix (MP4/MOV ``tkhd``
matrix, Matroska projection, H.264/HEVC SEI; FFmpeg hands it over as frame
side data) or the old ``rotate`` tag, turned into the rotation and mirror
that show the picture upright, applied to pixels and camera matrices.

A rotation is counter-clockwise as FFmpeg's ``av_display_rotation_get``
and PyAV's ``VideoFrame.rotation`` report it; ``hflip`` mirrors the stored
picture left-right before the rotation (the eight EXIF orientations).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: pixel-centre (camera matrices) -> pixel-edge coordinates; the same
#: convention as perception.data.geometry.CENTRE_TO_EDGE (not imported: it
#: pulls torch into a source listing)
_CENTRE_TO_EDGE = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
# np.rot90(image, 1) on pixel-edge coordinates of a width-w image:
# x' = y, y' = w - x
_ROT90 = np.array([[0, 1], [-1, 0]])
_HFLIP = np.array([[-1, 0], [0, 1]])


@dataclass(frozen=True)
class Orientation:
    """How to turn the stored picture to show it as meant.

    Attributes:
        rotation: counter-clockwise degrees, one of 0, 90, 180, 270.
        hflip: mirror left-right before rotating.
    """

    rotation: int = 0
    hflip: bool = False

    @property
    def identity(self) -> bool:
        return self.rotation == 0 and not self.hflip

    @classmethod
    def from_display_matrix(cls, values) -> 'Orientation':
        """From FFmpeg's 9 int32 display matrix (16.16 fixed point; the
        stored point (x, y) is displayed at (a x + c y, b x + d y)). Angles
        other than multiples of 90 degrees round to the nearest one."""
        a, b, _, c, d = (float(v) / 65536 for v in list(values)[:5])
        linear = np.array([[a, c], [b, d]])
        best, error = cls(), np.inf
        for rotation in (0, 90, 180, 270):
            for hflip in (False, True):
                candidate = cls(rotation, hflip)
                gap = np.abs(candidate._linear() - linear).sum()
                if gap < error:
                    best, error = candidate, gap
        return best

    @classmethod
    def from_rotate_tag(cls, value: str) -> 'Orientation':
        """From the ``rotate`` metadata tag (clockwise degrees)."""
        return cls(int(round(-float(value) / 90)) % 4 * 90)

    def _linear(self) -> np.ndarray:
        linear = np.linalg.matrix_power(_ROT90, self.rotation // 90)
        return linear @ _HFLIP if self.hflip else linear

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The picture as displayed (a contiguous copy when changed)."""
        if self.identity:
            return image
        if self.hflip:
            image = image[:, ::-1]
        return np.ascontiguousarray(np.rot90(image, self.rotation // 90))

    def matrix(self, width: int, height: int) -> np.ndarray:
        """(3, 3) pixel-edge coordinates of the displayed picture <- those
        of the stored ``width`` x ``height`` picture."""
        linear = self._linear()
        corners = linear @ np.array([[0, width, 0, width],
                                     [0, 0, height, height]])
        out = np.eye(3)
        out[:2, :2] = linear
        out[:2, 2] = -corners.min(axis=1)
        return out

    def camera_rotation(self) -> np.ndarray:
        """(3, 3) change of camera axes (stored -> displayed camera frame:
        a roll about the optical axis, or a mirror with ``hflip``)."""
        out = np.eye(3)
        out[:2, :2] = self._linear()
        return out

    def intrinsics(self, K: np.ndarray, width: int, height: int
                   ) -> np.ndarray:
        """The camera matrix of the displayed picture: focal lengths and
        principal point moved with the pixels (``K' = T K R^T`` with ``T``
        the pixel-centre transform and ``R`` :meth:`camera_rotation`, so
        projecting ``R X`` with ``K'`` lands where projecting ``X`` with
        ``K`` lands after the rotation)."""
        step = (np.linalg.inv(_CENTRE_TO_EDGE) @ self.matrix(width, height)
                @ _CENTRE_TO_EDGE)
        return step @ np.asarray(K, np.float64) @ self.camera_rotation().T

    def meta(self, width: int, height: int, applied: bool) -> dict:
        """What ``Frame.meta['orientation']`` records."""
        return {'rotation': self.rotation, 'hflip': self.hflip,
                'applied': applied, 'stored_size': (width, height),
                'matrix': self.matrix(width, height) if applied
                else np.eye(3)}


def frame_side_data(frame):
    """The side data of a decoded PyAV frame, without the reference cycle
    ``frame.side_data`` makes: that property caches its container on the
    frame, and the container points back at the frame, so every frame read
    that way (and its decoder buffer) waits for the cyclic GC (7-19% more
    CPU than a plain PyAV loop). A container of our own is freed with the
    last reference to it."""
    try:
        from av.sidedata.sidedata import SideDataContainer
        return SideDataContainer(frame)
    except (ImportError, TypeError):  # a PyAV without a public constructor
        return frame.side_data


@lru_cache(maxsize=64)
def _from_matrix_bytes(raw: bytes) -> Orientation:
    return Orientation.from_display_matrix(struct.unpack('<9i', raw))


def display_orientation(frame) -> Orientation | None:
    """The orientation a decoded PyAV frame's display matrix side data
    states (None when it carries none)."""
    for side in frame_side_data(frame):
        if str(side.type).endswith('DISPLAYMATRIX'):
            raw = bytes(side)
            if len(raw) >= 36:
                return _from_matrix_bytes(raw[:36])
    return None


def frame_orientation(frame, stream) -> Orientation:
    """The orientation of a decoded PyAV frame: its display matrix side
    data, else the stream's ``rotate`` tag, else none."""
    found = display_orientation(frame)
    return stream_tag_orientation(stream) if found is None else found


def stream_tag_orientation(stream) -> Orientation:
    """The orientation the stream's ``rotate`` metadata tag states (none
    when it has no such tag, or an unreadable one)."""
    # Matroska tags come back upper-case (ROTATE)
    tags = {k.lower(): v for k, v in (stream.metadata or {}).items()}
    tag = tags.get('rotate')
    if tag:
        try:
            return Orientation.from_rotate_tag(tag)
        except ValueError:
            pass
    return Orientation()
