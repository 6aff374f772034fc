"""Recording what a geometric transform did, so predictions map back.

Every geometric transform (the core's and the albumentations bridge) calls
:func:`record_geometry` with the 3x3 matrix that maps pixel-edge coordinates
of its input image to those of its output image.
"""
from __future__ import annotations

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
