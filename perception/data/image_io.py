"""The one image reader: every image file the core and the plugins read
(image-folder sources, ``LoadImage``, camera-feed caches; which file
suffixes count as images: ``perception.sources.IMAGE_SUFFIXES``) goes through
:func:`read_image`, and every decoded buffer (bag messages) through
:func:`decode_image`, so that channel order and bit depth mean the same
everywhere.

What comes out:

* by default RGB uint8 (H, W, 3): grey images are repeated into three
  channels, an alpha channel is dropped;
* ``gray=True``: uint8 (H, W), the ITU-R 601 luma of the colour image;
* ``raw=True``: the file's own depth and channels, colour in RGB(A) order
  (e.g. uint16 (H, W) for a 16-bit depth or thermal image).

**The 16-bit rule** (:func:`to_uint8`, the only place it is written):
16-bit values become 8-bit by ``value >> 8`` (the high byte, so 65535 ->
255 and 257 * v -> v); other non-uint8 depths (int32, float) are clipped
to [0, 255]. Raw reads never rescale.

A file that cannot be read raises :class:`ImageReadError` naming the file
and the reason (missing, empty, not an image OpenCV can decode).
EXIF orientation is not applied: pixels come out as stored, as labels
refer to them.
"""
from __future__ import annotations

import os

import numpy as np

from perception.errors import UserError

__all__ = ['ImageReadError', 'decode_image', 'image_size',
           'read_image', 'to_gray8', 'to_rgb8', 'to_uint8']


class ImageReadError(UserError, ValueError):
    """An image file (or buffer) cannot be decoded; the message names it
    and says why."""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The 16-bit rule: uint16 -> uint8 by ``>> 8``; other non-uint8
    depths clipped to [0, 255]; uint8 unchanged (same object)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8)


def to_rgb8(image: np.ndarray, order: str = 'rgb') -> np.ndarray:
    """An image of any depth with 1, 3 or 4 channels (channel order
    ``order``: 'rgb' or 'bgr', OpenCV's) -> RGB uint8 (H, W, 3)."""
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f'to_rgb8: cannot make RGB of an image of shape '
                         f'{image.shape}; expected (H, W), (H, W, 3) or '
                         '(H, W, 4)')
    image = image[..., :3]
    if order == 'bgr':
        image = image[..., ::-1]
    return np.ascontiguousarray(image)


def to_gray8(image: np.ndarray, order: str = 'rgb') -> np.ndarray:
    """An image of any depth -> uint8 (H, W) luma (ITU-R 601, as PIL's 'L')."""
    import cv2
    rgb = to_rgb8(image, order)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def decode_image(data, raw: bool = False, gray: bool = False,
                 name: str = 'image data') -> np.ndarray:
    """Decode an encoded image (PNG, JPEG, ... bytes or a uint8 array) as
    :func:`read_image` reads a file. ``name`` is used in errors."""
    import cv2
    buffer = np.frombuffer(data, np.uint8) if isinstance(
        data, (bytes, bytearray, memoryview)) else np.asarray(data, np.uint8)
    if not buffer.size:
        raise ImageReadError(f'{name}: is empty (0 bytes); re-export or '
                             'remove it')
    image = cv2.imdecode(buffer.reshape(-1), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(
            f'{name}: not a readable image (OpenCV cannot decode its '
            f'{buffer.size} bytes: truncated, corrupt or not an image '
            'format OpenCV reads (PNG, JPEG, BMP, TIFF, WebP, PPM/PGM))')
    if gray:
        return to_gray8(image, 'bgr')
    if not raw:
        return to_rgb8(image, 'bgr')
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image[..., ::-1])
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., [2, 1, 0, 3]])
    return image


def read_image(path: str | os.PathLike, raw: bool = False,
               gray: bool = False) -> np.ndarray:
    """Read an image file.

    Args:
        path: the file.
        raw: native depth and channels (colour in RGB(A) order) instead of
            RGB uint8.
        gray: uint8 (H, W) luma instead of RGB (ignored with ``raw``).

    Returns:
        RGB uint8 (H, W, 3) by default (16-bit scaled by the module's rule).

    Raises:
        ImageReadError: the file is missing, empty or not a decodable image.
    """
    path = os.fspath(path)
    try:
        data = np.fromfile(path, np.uint8)
    except FileNotFoundError:
        raise ImageReadError(f'{path}: image file is missing (no such file); check '
                             'the path') from None
    except OSError as exc:
        raise ImageReadError(f'{path}: cannot read the file ({exc})'
                             ) from exc
    return decode_image(data, raw=raw, gray=gray and not raw, name=path)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file, reading only its header.

    Raises:
        ImageReadError: missing file or unreadable header.
    """
    from PIL import Image, UnidentifiedImageError
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageReadError(f'{path}: image file is missing (no such file); check '
                             'the path')
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(f'{path}: cannot read the image header ({exc})'
                             ) from exc
