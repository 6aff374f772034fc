"""Quality-aware classification losses on sigmoid scores with soft targets
(the IoU of the localisation, or TOOD's normalized alignment):

* Quality Focal Loss (Li et al., "Generalized Focal Loss", NeurIPS 2020):
  ``-|y - p|**beta * (y log p + (1 - y) log(1 - p))``.
* Varifocal Loss (Zhang et al., "VarifocalNet", CVPR 2021):
  ``-q (q log p + (1 - q) log(1 - p))`` where the target q > 0, and
  ``-alpha p**gamma log(1 - p)`` where q = 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from perception.models.losses.utils import LossMixin
from perception.registry import MODELS


def quality_focal_loss(pred: torch.Tensor, target: torch.Tensor,
                       beta: float = 2.0) -> torch.Tensor:
    """Element-wise QFL.

    Args:
        pred: (N, C) logits.
        target: (N, C) soft targets in [0, 1] (0 for background classes).
        beta: focusing exponent.

    Returns:
        (N, C) loss.
    """
    target = target.to(pred.dtype)
    bce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    return bce * (pred.sigmoid() - target).abs().pow(beta)


def varifocal_loss(pred: torch.Tensor, target: torch.Tensor,
                   alpha: float = 0.75, gamma: float = 2.0,
                   iou_weighted: bool = True) -> torch.Tensor:
    """Element-wise VFL.

    Args:
        pred: (N, C) logits.
        target: (N, C) soft targets in [0, 1] (0 for background classes).
        alpha: weight of the negatives.
        gamma: focusing exponent of the negatives.
        iou_weighted: weight positives by their target q (else by 1).

    Returns:
        (N, C) loss.
    """
    target = target.to(pred.dtype)
    prob = pred.sigmoid()
    positive = (target > 0).to(pred.dtype)
    pos_weight = target if iou_weighted else torch.ones_like(target)
    focal_weight = (pos_weight * positive + alpha * prob.detach().pow(gamma) *
                    (1 - positive))
    bce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    return bce * focal_weight


@MODELS.register_module()
class QualityFocalLoss(LossMixin, nn.Module):
    """Quality Focal Loss (GFL) on sigmoid logits with soft targets.

    Args:
        beta: focusing exponent (2 in the paper).
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, beta: float = 2.0, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None,
                avg_factor: float | torch.Tensor | None = None,
                reduction_override: str | None = None) -> torch.Tensor:
        """Args: pred (N, C) logits; target (N, C) soft targets; weight (N,)
        or (N, C)."""
        loss = quality_focal_loss(pred, target, self.beta)
        return self._reduce(loss, weight, avg_factor, reduction_override)


@MODELS.register_module()
class VarifocalLoss(LossMixin, nn.Module):
    """Varifocal Loss (VarifocalNet) on sigmoid logits with soft targets.

    Args:
        alpha: weight of the negatives (0.75 in the paper).
        gamma: focusing exponent of the negatives (2 in the paper).
        iou_weighted: weight positives by their target.
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, alpha: float = 0.75, gamma: float = 2.0,
                 iou_weighted: bool = True, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.gamma = gamma
        self.iou_weighted = iou_weighted
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None,
                avg_factor: float | torch.Tensor | None = None,
                reduction_override: str | None = None) -> torch.Tensor:
        """Args: pred (N, C) logits; target (N, C) soft targets; weight (N,)
        or (N, C)."""
        loss = varifocal_loss(pred, target, self.alpha, self.gamma,
                              self.iou_weighted)
        return self._reduce(loss, weight, avg_factor, reduction_override)
