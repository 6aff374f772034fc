"""Box conventions and geometry on (N, 4) arrays.

The data-sample contract stores boxes as ``xyxy`` in *pixel-edge*
coordinates: the box covering pixels 0..9 is ``[0, 10]``; width = x2 - x1.
Formats on disk differ:

* ``xywh`` (COCO): ``[x, y, width, height]``, x/y the top-left pixel edge
  ("box coordinates are measured from the top left image corner and are
  0-indexed"), so ``xyxy = [x, y, x + w, y + h]``.
* ``inclusive`` (BDD100K / Scalabel): ``x1, y1, x2, y2`` are the indices of
  the first and last pixel inside the box; the box of pixels 0..9 is
  ``[0, 9]`` (Scalabel's own COCO export adds 1 to get the width).
* ``kitti``: ``left, top, right, bottom`` "pixel coordinates (0-based
  index)" of the first and last pixel, clipped by KITTI to
  ``[0, W - 1]``: inclusive like BDD100K, but floats. KITTI's own benchmark
  measures height as ``bottom - top`` (one less than the pixel-edge
  height); :mod:`perception_driving.datasets.box_filters` documents how its
  ``min_height`` relates.
* ``cxcywh``: centre and size in pixel-edge units.

Every function takes and returns float32 numpy arrays (torch tensors are
accepted and converted) and never modifies its input.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: Names accepted by :func:`convert_boxes`.
BOX_FORMATS = ('xyxy', 'xywh', 'coco', 'inclusive', 'bdd100k', 'kitti',
               'cxcywh')
_ALIASES = {'coco': 'xywh', 'bdd100k': 'inclusive', 'kitti': 'inclusive'}


def as_boxes(boxes) -> np.ndarray:
    """(N, 4) float32 copy of ``boxes`` (list, numpy or torch)."""
    if hasattr(boxes, 'detach'):
        boxes = boxes.detach().cpu().numpy()
    out = np.array(boxes, dtype=np.float32, copy=True)
    if out.size == 0:
        return out.reshape(0, 4)
    if out.ndim != 2 or out.shape[1] != 4:
        raise ValueError(f'boxes must have shape (N, 4), got {out.shape}')
    return out


def xywh_to_xyxy(boxes) -> np.ndarray:
    """COCO ``[x, y, w, h]`` -> pixel-edge ``[x1, y1, x2, y2]``."""
    out = as_boxes(boxes)
    out[:, 2:] += out[:, :2]
    return out


def xyxy_to_xywh(boxes) -> np.ndarray:
    """Pixel-edge ``xyxy`` -> COCO ``[x, y, w, h]``."""
    out = as_boxes(boxes)
    out[:, 2:] -= out[:, :2]
    return out


def inclusive_to_xyxy(boxes) -> np.ndarray:
    """First/last pixel index (BDD100K, KITTI) -> pixel-edge ``xyxy``."""
    out = as_boxes(boxes)
    out[:, 2:] += 1.0
    return out


def xyxy_to_inclusive(boxes) -> np.ndarray:
    """Pixel-edge ``xyxy`` -> first/last pixel index (BDD100K, KITTI)."""
    out = as_boxes(boxes)
    out[:, 2:] -= 1.0
    return out


def cxcywh_to_xyxy(boxes) -> np.ndarray:
    """Centre and size -> ``xyxy``."""
    b = as_boxes(boxes)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def xyxy_to_cxcywh(boxes) -> np.ndarray:
    """``xyxy`` -> centre and size."""
    b = as_boxes(boxes)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]],
                          axis=1)


_TO_XYXY = {'xyxy': as_boxes, 'xywh': xywh_to_xyxy,
            'inclusive': inclusive_to_xyxy, 'cxcywh': cxcywh_to_xyxy}
_FROM_XYXY = {'xyxy': as_boxes, 'xywh': xyxy_to_xywh,
              'inclusive': xyxy_to_inclusive, 'cxcywh': xyxy_to_cxcywh}


def convert_boxes(boxes, src: str, dst: str) -> np.ndarray:
    """Convert between any two of :data:`BOX_FORMATS`.

    Args:
        boxes: (N, 4) boxes in ``src`` convention.
        src: source convention, e.g. ``'bdd100k'``.
        dst: target convention, e.g. ``'xyxy'``.
    """
    for name in (src, dst):
        if name not in BOX_FORMATS:
            raise ValueError(f"unknown box format {name!r}; choose from "
                             f"{', '.join(BOX_FORMATS)}")
    src, dst = _ALIASES.get(src, src), _ALIASES.get(dst, dst)
    return _FROM_XYXY[dst](_TO_XYXY[src](boxes))


def box_areas(boxes) -> np.ndarray:
    """(N,) areas of pixel-edge ``xyxy`` boxes (0 for inverted boxes)."""
    b = as_boxes(boxes)
    return (np.clip(b[:, 2] - b[:, 0], 0, None)
            * np.clip(b[:, 3] - b[:, 1], 0, None))


def clip_boxes(boxes, shape: Sequence[int]) -> np.ndarray:
    """Clip ``xyxy`` boxes to an image of ``shape`` = (height, width)."""
    b = as_boxes(boxes)
    h, w = shape[:2]
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    return b


def box_problem(box: Sequence[float], shape: Sequence[int] | None,
                tolerance: float = 2.0) -> str | None:
    """Why one pixel-edge box is unusable, or None if it is fine.

    Args:
        box: ``[x1, y1, x2, y2]``.
        shape: image (height, width), or None to skip the bounds check.
        tolerance: pixels a box may stick out of the image before it is an
            error (annotation tools round; such boxes are clipped).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(np.isfinite([x1, y1, x2, y2])):
        return f'box {[x1, y1, x2, y2]} has a non-finite coordinate'
    if x2 <= x1 or y2 <= y1:
        return (f'box {[x1, y1, x2, y2]} has a negative or zero size '
                f'(width {x2 - x1:g}, height {y2 - y1:g})')
    if shape is not None:
        h, w = shape[:2]
        if (x1 < -tolerance or y1 < -tolerance or x2 > w + tolerance
                or y2 > h + tolerance):
            return (f'box {[x1, y1, x2, y2]} lies outside the {w}x{h} '
                    f'image by more than {tolerance:g} px')
    return None


def transform_boxes(boxes, matrix: np.ndarray) -> np.ndarray:
    """Map ``xyxy`` boxes through a 3x3 homography: the axis-aligned box
    around the four mapped corners (exact for flips, scales, crops, pads).

    Use ``numpy.linalg.inv(homography_matrix)`` to map predictions on the
    current image back to the original image.
    """
    b = as_boxes(boxes)
    if len(b) == 0:
        return b
    xs, ys = b[:, [0, 2, 2, 0]], b[:, [1, 1, 3, 3]]
    pts = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ np.asarray(
        matrix, np.float64).T
    pts = pts[..., :2] / pts[..., 2:3]
    return np.concatenate([pts.min(axis=1), pts.max(axis=1)],
                          axis=1).astype(np.float32)
