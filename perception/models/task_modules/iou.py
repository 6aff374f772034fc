"""Box overlaps: IoU, GIoU (Rezatofighi et al., CVPR 2019) and CIoU
(Zheng et al., "Distance-IoU Loss", AAAI 2020) of xyxy boxes.

One function serves the assigner (pairwise IoU of ground truth and
predictions) and the box losses (aligned GIoU / CIoU of matched pairs).
"""
from __future__ import annotations

import math

import torch

OVERLAP_MODES = ('iou', 'giou', 'ciou')


def bbox_overlaps(boxes1: torch.Tensor, boxes2: torch.Tensor,
                  mode: str = 'iou', is_aligned: bool = False,
                  eps: float = 1e-7) -> torch.Tensor:
    """Overlaps of xyxy boxes.

    Args:
        boxes1: (..., N, 4) xyxy boxes.
        boxes2: (..., M, 4) xyxy boxes; (..., N, 4) when ``is_aligned``.
        mode: 'iou', 'giou' or 'ciou'.
        is_aligned: pair ``boxes1[i]`` with ``boxes2[i]`` only.
        eps: guards the divisions against empty boxes.

    Returns:
        (..., N, M) overlaps, or (..., N) when ``is_aligned``. IoU lies in
        [0, 1], GIoU in [-1, 1], CIoU in [-1.5, 1].
    """
    if mode not in OVERLAP_MODES:
        raise ValueError(f'bbox_overlaps: mode must be one of {OVERLAP_MODES}, '
                         f'got {mode!r}')
    if not is_aligned:
        boxes1 = boxes1[..., :, None, :]
        boxes2 = boxes2[..., None, :, :]
    w1 = (boxes1[..., 2] - boxes1[..., 0]).clamp(min=0)
    h1 = (boxes1[..., 3] - boxes1[..., 1]).clamp(min=0)
    w2 = (boxes2[..., 2] - boxes2[..., 0]).clamp(min=0)
    h2 = (boxes2[..., 3] - boxes2[..., 1]).clamp(min=0)
    lt = torch.maximum(boxes1[..., :2], boxes2[..., :2])
    rb = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = w1 * h1 + w2 * h2 - inter
    iou = inter / union.clamp(min=eps)
    if mode == 'iou':
        return iou
    enclose_wh = (torch.maximum(boxes1[..., 2:], boxes2[..., 2:]) -
                  torch.minimum(boxes1[..., :2], boxes2[..., :2])).clamp(min=0)
    if mode == 'giou':
        enclose = (enclose_wh[..., 0] * enclose_wh[..., 1]).clamp(min=eps)
        return iou - (enclose - union) / enclose
    # CIoU: IoU - centre distance / enclosing diagonal - aspect-ratio term
    diag = enclose_wh[..., 0]**2 + enclose_wh[..., 1]**2 + eps
    centre1 = (boxes1[..., :2] + boxes1[..., 2:]) / 2
    centre2 = (boxes2[..., :2] + boxes2[..., 2:]) / 2
    rho2 = ((centre1 - centre2)**2).sum(-1)
    v = (4 / math.pi**2) * (torch.atan(w2 / (h2 + eps)) -
                            torch.atan(w1 / (h1 + eps)))**2
    with torch.no_grad():  # the trade-off weight is a constant (the paper)
        alpha = v / (1 - iou + v + eps)
    return iou - rho2 / diag - alpha * v
