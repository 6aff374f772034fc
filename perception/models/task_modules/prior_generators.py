"""Point priors of a feature pyramid: one per feature-map cell."""
from __future__ import annotations

from typing import Sequence

import torch

from perception.registry import TASK_UTILS


@TASK_UTILS.register_module()
class MlvlPointGenerator:
    """Centres of every level's grid cells, in input-pixel pixel-edge
    coordinates: cell (i, j) at stride s has centre ((j + offset) s,
    (i + offset) s), i.e. ((j + 0.5) s, (i + 0.5) s) by default.

    Only shape-driven ops (``arange``, ``meshgrid``), so priors of traced
    feature maps follow dynamic input sizes in an ONNX export.

    Args:
        strides: stride of each level, an int or a (stride_w, stride_h) pair.
        offset: cell offset of the centre, 0.5 for the cell centre.
    """

    def __init__(self, strides: Sequence[int | Sequence[int]],
                 offset: float = 0.5) -> None:
        self.strides = [(s, s) if isinstance(s, (int, float)) else tuple(s)
                        for s in strides]
        self.offset = offset

    @property
    def num_levels(self) -> int:
        """Number of pyramid levels."""
        return len(self.strides)

    def single_level_grid_priors(self, featmap_size: Sequence[int],
                                 level_idx: int,
                                 dtype: torch.dtype = torch.float32,
                                 device: torch.device | str = 'cpu',
                                 with_stride: bool = True) -> torch.Tensor:
        """Priors of one level.

        Args:
            featmap_size: (H, W) of the level's map.
            level_idx: index of the level.
            dtype, device: of the result.
            with_stride: append the level's (stride_w, stride_h).

        Returns:
            (H * W, 4) rows (x, y, stride_w, stride_h), or (H * W, 2) rows
            (x, y) without strides; row-major over the map (row i * W + j),
            the order of ``feat.permute(0, 2, 3, 1).reshape(B, H * W, C)``.
        """
        h, w = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        xs = (torch.arange(w, device=device, dtype=dtype) +
              self.offset) * stride_w
        ys = (torch.arange(h, device=device, dtype=dtype) +
              self.offset) * stride_h
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        if not with_stride:
            return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1)
        return torch.stack([xx.reshape(-1), yy.reshape(-1),
                            torch.full_like(xx.reshape(-1), stride_w),
                            torch.full_like(yy.reshape(-1), stride_h)],
                           dim=-1)

    def grid_priors(self, featmap_sizes: Sequence[Sequence[int]],
                    dtype: torch.dtype = torch.float32,
                    device: torch.device | str = 'cpu',
                    with_stride: bool = True) -> list[torch.Tensor]:
        """Priors of every level (see :meth:`single_level_grid_priors`).

        Args:
            featmap_sizes: (H_i, W_i) of each level, finest first.

        Returns:
            list of (H_i * W_i, 4) (or (H_i * W_i, 2)) tensors.
        """
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f'MlvlPointGenerator: {len(featmap_sizes)} '
                             f'feature maps for {self.num_levels} strides '
                             f'{self.strides}; give one stride per level')
        return [self.single_level_grid_priors(size, i, dtype, device,
                                              with_stride)
                for i, size in enumerate(featmap_sizes)]
