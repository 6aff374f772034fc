"""Geometry in one place: recording what a geometric transform did, and
mapping predictions back to the source (pixels, and for CT LPS mm).

Every geometric transform (the core's and the albumentations bridge) calls
:func:`record_geometry` with the 3x3 matrix that maps pixel-edge coordinates
of its input image to those of its output image. Every consumer of
predictions (COCO metric, prediction pictures, FROC, inference) maps them
back with :func:`boxes_to_source` and :func:`points_to_lps`.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

#: pixel-centre (camera matrices, OpenCV) -> pixel-edge (boxes) coordinates
CENTRE_TO_EDGE = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])


def record_geometry(results: dict, matrix: np.ndarray,
                    out_shape: tuple[int, int] | None = None) -> None:
    """Compose ``matrix`` into ``homography_matrix`` (current <- original),
    ``scale_factor`` and ``intrinsics``; set ``img_shape`` to ``out_shape``.

    Args:
        results: the sample's fields, updated in place.
        matrix: (3, 3) output pixel-edge coords <- input pixel-edge coords.
        out_shape: (height, width) of the output image.
    """
    matrix = np.asarray(matrix, np.float64)
    previous = np.asarray(results.get('homography_matrix', np.eye(3)),
                          np.float64)
    results['homography_matrix'] = (matrix @ previous).astype(np.float32)
    sx = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    sy = float(np.hypot(matrix[0, 1], matrix[1, 1]))
    prev = results.get('scale_factor', (1.0, 1.0))
    results['scale_factor'] = (prev[0] * sx, prev[1] * sy)
    if results.get('intrinsics') is not None:
        # camera matrices use pixel-centre coordinates
        step = np.linalg.inv(CENTRE_TO_EDGE) @ matrix @ CENTRE_TO_EDGE
        results['intrinsics'] = (step @ np.asarray(
            results['intrinsics'], np.float64)).astype(np.float32)
    if out_shape is not None:
        results['img_shape'] = tuple(out_shape)


# -- mapping predictions back to the source --------------------------------


def sample_meta(sample: Any, key: str, default: Any = None) -> Any:
    """A meta field of a DataSample, of its ``to_dict()`` or of a pipeline
    results dict."""
    if isinstance(sample, Mapping):
        if key in sample:
            return sample[key]
        return (sample.get('metainfo') or {}).get(key, default)
    metainfo = getattr(sample, 'metainfo', None)
    if metainfo is not None and key in metainfo:
        return metainfo[key]
    return getattr(sample, key, default)


def source_from_current(sample: Any) -> np.ndarray:
    """(3, 3) matrix mapping pixel-edge coordinates of the current (model
    input) image to those of the source image: the inverse of what the
    transforms recorded (identity when they recorded nothing).

    Raises:
        ValueError: the sample is a mosaic (``mosaic`` meta): it has no
            single source image to map back to.
    """
    if sample_meta(sample, 'mosaic'):
        raise ValueError(
            f"sample {sample_meta(sample, 'img_path')!r} is a mosaic of "
            'several images (training-only augmentation): it has no single '
            'source image to map back to; evaluate and infer on a pipeline '
            'without Mosaic')
    matrix = sample_meta(sample, 'homography_matrix')
    if matrix is None:
        return np.eye(3)
    return np.linalg.inv(np.asarray(matrix, np.float64))


def boxes_to_source(sample: Any, boxes) -> np.ndarray:
    """xyxy pixel-edge boxes on the current image -> the same boxes on the
    source image (the axis-aligned box around the mapped corners: exact for
    resizes, flips, crops and pads).

    Args:
        sample: the DataSample (or dict) the boxes were predicted for; its
            ``homography_matrix`` says what the transforms did.
        boxes: (N, 4) array or tensor.

    Returns:
        float32 (N, 4) in source-image pixels.
    """
    from perception.data.boxes import transform_boxes
    if hasattr(boxes, 'detach'):
        boxes = boxes.detach().cpu().numpy()
    return transform_boxes(np.asarray(boxes, np.float64).reshape(-1, 4),
                           source_from_current(sample))


#: meta key a model sets when its ``pred_instances`` are already in source
#: pixels (the core Detector's ``predict`` does, per the model contract).
PRED_SPACE_KEY = 'pred_space'


def preds_in_source(sample: Any) -> bool:
    """Whether ``sample``'s predictions are already in source pixels."""
    return sample_meta(sample, PRED_SPACE_KEY) == 'source'


def pred_boxes_to_source(sample: Any, boxes) -> np.ndarray:
    """Predicted boxes in source pixels, whichever space the model gave them
    in: unchanged when the sample says ``pred_space='source'``, else mapped
    back with :func:`boxes_to_source` (predictions on the current image)."""
    if preds_in_source(sample):
        if hasattr(boxes, 'detach'):
            boxes = boxes.detach().cpu().numpy()
        return np.asarray(boxes, np.float32).reshape(-1, 4)
    return boxes_to_source(sample, boxes)


def boxes_to_current(sample: Any, boxes) -> np.ndarray:
    """Source-image boxes -> the current (model input) image, through what
    the transforms recorded (the inverse of :func:`boxes_to_source`)."""
    from perception.data.boxes import transform_boxes
    if hasattr(boxes, 'detach'):
        boxes = boxes.detach().cpu().numpy()
    return transform_boxes(np.asarray(boxes, np.float64).reshape(-1, 4),
                           np.linalg.inv(source_from_current(sample)))


def points_to_source(sample: Any, points) -> np.ndarray:
    """(..., 2) x, y pixel-edge points on the current image -> source image."""
    if hasattr(points, 'detach'):
        points = points.detach().cpu().numpy()
    points = np.asarray(points, np.float64)
    flat = points.reshape(-1, 2)
    homogeneous = np.concatenate([flat, np.ones((len(flat), 1))], axis=1)
    mapped = homogeneous @ source_from_current(sample).T
    return (mapped[:, :2] / mapped[:, 2:3]).reshape(points.shape)


def points_to_lps(sample: Any, points, space: str = 'current'
                  ) -> np.ndarray:
    """(..., 2) x, y pixel-edge points on the current image of a CT slice
    -> (..., 3) LPS millimetres, through what the transforms did and then
    the slice's volume ``affine`` (index (z, y, x, 1) -> LPS) at its
    ``slice_index``. ``space='source'``: the points are already on the
    source slice (no transform undone).

    Raises:
        ValueError: the sample has no ``affine`` or ``slice_index``.
    """
    affine = sample_meta(sample, 'affine')
    slice_index = sample_meta(sample, 'slice_index')
    if affine is None or slice_index is None:
        raise ValueError('points_to_lps needs a CT sample with `affine` and '
                         '`slice_index` in its meta (keep them in '
                         "PackInputs' meta_keys)")
    if space not in ('current', 'source'):
        raise ValueError(f"space must be 'current' or 'source', got {space!r}")
    source = points_to_source(sample, points) if space == 'current' else \
        np.asarray(points, np.float64)
    flat = source.reshape(-1, 2)
    # pixel-edge (x, y) -> pixel-centre index (row, col); slice as z
    index = np.stack([np.full(len(flat), float(slice_index)),
                      flat[:, 1] - 0.5, flat[:, 0] - 0.5, np.ones(len(flat))],
                     axis=1)
    lps = index @ np.asarray(affine, np.float64).T
    return lps[:, :3].reshape(source.shape[:-1] + (3, ))


def source_pixel_spacing(sample: Any) -> tuple[float, float]:
    """(row, column) spacing in mm of a CT slice's source pixels."""
    affine = np.asarray(sample_meta(sample, 'affine'), np.float64)
    _, rows, cols = np.linalg.norm(affine[:3, :3], axis=0)
    return float(rows), float(cols)
