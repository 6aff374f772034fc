"""Dense predictions back to the source image: the per-pixel counterpart
of :func:`perception.data.geometry.boxes_to_source`.

Every source pixel looks up the current (model input) image where the
recorded ``homography_matrix`` (current <- original) sends its centre:
scores are sampled bilinearly (then arg-maxed by the caller), label maps by
nearest neighbour. Exact for resizes, flips, crops and pads; the padded
border of a batch is never sampled.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from perception.data.geometry import sample_meta, source_from_current


def source_grid(sample: Any, source_shape: Sequence[int],
                current_shape: Sequence[int], inverse: bool = False
                ) -> torch.Tensor:
    """(1, H0, W0, 2) ``grid_sample`` grid (``align_corners=False``) that
    reads a map of ``current_shape`` (H, W) at the centres of the source
    pixels (``source_shape`` (H0, W0)), through what the transforms did;
    ``inverse``: the other way round (a source map read at the centres of
    the current image's pixels)."""
    h0, w0 = int(source_shape[0]), int(source_shape[1])
    h, w = int(current_shape[0]), int(current_shape[1])
    matrix = source_from_current(sample)
    lookup = matrix if inverse else np.linalg.inv(matrix)
    ys, xs = np.meshgrid(np.arange(h0) + 0.5, np.arange(w0) + 0.5,
                         indexing='ij')
    points = np.stack([xs, ys, np.ones_like(xs)], -1) @ lookup.T
    points = points[..., :2] / points[..., 2:3]
    grid = np.stack([points[..., 0] / w * 2 - 1, points[..., 1] / h * 2 - 1],
                    -1)
    return torch.from_numpy(grid.astype(np.float32))[None]


def seg_to_source(sample: Any, seg: torch.Tensor, mode: str = 'bilinear',
                  source_shape: Sequence[int] | None = None) -> torch.Tensor:
    """A dense map on the current image -> the same map on the source image.

    Args:
        sample: the DataSample (or dict) it was predicted for.
        seg: (C, H, W) scores (``mode='bilinear'``) or (H, W) / (1, H, W)
            labels (``mode='nearest'``) on the current image, or on the
            padded batch (the padding lies right and below it).
        mode: 'bilinear' for scores, 'nearest' for labels.
        source_shape: (H0, W0); default the sample's ``ori_shape``.

    Returns:
        (C, H0, W0) float scores, or (H0, W0) labels of ``seg``'s dtype.
    """
    if mode not in ('bilinear', 'nearest'):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    shape = source_shape or sample_meta(sample, 'ori_shape') or \
        sample_meta(sample, 'img_shape') or seg.shape[-2:]
    labels = mode == 'nearest'
    x = seg.reshape((1, 1) + tuple(seg.shape[-2:])) if labels else seg[None]
    grid = source_grid(sample, shape, x.shape[-2:]).to(seg.device)
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode='border',
                        align_corners=False)[0]
    return out[0].round().to(seg.dtype) if labels else out


def seg_to_current(sample: Any, labels: torch.Tensor,
                   current_shape: Sequence[int]) -> torch.Tensor:
    """(H0, W0) labels on the source image -> (H, W) ``current_shape`` on
    the current (model input) image, nearest neighbour (for pictures drawn
    on the model input)."""
    x = labels.reshape((1, 1) + tuple(labels.shape[-2:])).float()
    grid = source_grid(sample, current_shape, labels.shape[-2:],
                       inverse=True).to(labels.device)
    out = F.grid_sample(x, grid, mode='nearest', padding_mode='border',
                        align_corners=False)[0, 0]
    return out.round().to(labels.dtype)
