"""IoU-based box losses: GIoU (Rezatofighi et al., "Generalized Intersection
over Union", CVPR 2019) and CIoU (Zheng et al., "Distance-IoU Loss", AAAI
2020), ``1 - overlap`` of matched xyxy boxes."""
from __future__ import annotations

import torch
from torch import nn

from perception.models.losses.utils import LossMixin
from perception.models.task_modules.iou import bbox_overlaps
from perception.registry import MODELS


class _IoUBasedLoss(LossMixin, nn.Module):
    mode = 'giou'

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0,
                 eps: float = 1e-7) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None,
                avg_factor: float | torch.Tensor | None = None,
                reduction_override: str | None = None) -> torch.Tensor:
        """Args: pred (N, 4) and target (N, 4) xyxy boxes; weight (N,)."""
        loss = 1 - bbox_overlaps(pred, target.to(pred.dtype), mode=self.mode,
                                 is_aligned=True, eps=self.eps)
        return self._reduce(loss, weight, avg_factor, reduction_override)


@MODELS.register_module()
class GIoULoss(_IoUBasedLoss):
    """``1 - GIoU`` of matched boxes, in [0, 2].

    Args:
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
        eps: guards the divisions.
    """

    mode = 'giou'


@MODELS.register_module()
class CIoULoss(_IoUBasedLoss):
    """``1 - CIoU`` of matched boxes (IoU, centre distance, aspect ratio).

    Args:
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
        eps: guards the divisions.
    """

    mode = 'ciou'
