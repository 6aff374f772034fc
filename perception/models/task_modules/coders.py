"""Box coders: boxes <-> regression targets."""
from __future__ import annotations

from typing import Sequence

import torch

from perception.registry import TASK_UTILS


@TASK_UTILS.register_module()
class DistancePointBBoxCoder:
    """(left, top, right, bottom) distances from a point <-> xyxy box, the
    coding of FCOS / TOOD / YOLOv8-style anchor-free heads.

    Args:
        clip_border: clip decoded boxes to ``max_shape`` when it is given.
    """

    def __init__(self, clip_border: bool = True) -> None:
        self.clip_border = clip_border

    def encode(self, points: torch.Tensor, gt_bboxes: torch.Tensor,
               max_dis: float | None = None,
               eps: float = 0.01) -> torch.Tensor:
        """Distances from ``points`` to the sides of ``gt_bboxes``.

        Args:
            points: (..., N, 2+) priors; the first two columns are (x, y).
            gt_bboxes: (..., N, 4) xyxy boxes.
            max_dis: clamp distances to ``[0, max_dis - eps]`` (a
                distribution head's last bin), if given.
            eps: margin below ``max_dis``.

        Returns:
            (..., N, 4) distances (l, t, r, b); negative where a point lies
            outside its box (unless clamped).
        """
        x, y = points[..., 0], points[..., 1]
        dist = torch.stack([x - gt_bboxes[..., 0], y - gt_bboxes[..., 1],
                            gt_bboxes[..., 2] - x, gt_bboxes[..., 3] - y],
                           dim=-1)
        if max_dis is not None:
            dist = dist.clamp(min=0, max=max_dis - eps)
        return dist

    def decode(self, points: torch.Tensor, distances: torch.Tensor,
               max_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Boxes from ``points`` and their side distances.

        Args:
            points: (N, 2+) or (..., N, 2+) priors, (x, y) first; broadcast
                against ``distances`` (e.g. (N, 4) priors, (B, N, 4)
                distances).
            distances: (..., N, 4) distances (l, t, r, b) in pixels.
            max_shape: (H, W) to clip to, if given and ``clip_border``.

        Returns:
            (..., N, 4) xyxy boxes.
        """
        xy = points[..., :2]
        boxes = torch.cat([xy - distances[..., :2], xy + distances[..., 2:]],
                          dim=-1)
        if max_shape is not None and self.clip_border:
            h, w = max_shape[0], max_shape[1]
            boxes = torch.stack([boxes[..., 0].clamp(0, w),
                                 boxes[..., 1].clamp(0, h),
                                 boxes[..., 2].clamp(0, w),
                                 boxes[..., 3].clamp(0, h)], dim=-1)
        return boxes
