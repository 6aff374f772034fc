"""Distribution Focal Loss (Li et al., "Generalized Focal Loss", NeurIPS
2020): a box side as a discrete distribution over integer bins, trained to
put its mass on the two bins around the target distance."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from perception.models.losses.utils import LossMixin
from perception.registry import MODELS


def distribution_focal_loss(pred: torch.Tensor,
                            target: torch.Tensor) -> torch.Tensor:
    """Element-wise DFL.

    Args:
        pred: (..., R) logits over the bins 0..R-1.
        target: (...) distances in bin units, in [0, R - 1).

    Returns:
        (...) loss: ``-(w_l log p_l + w_r log p_r)`` with ``l = floor(y)``,
        ``r = l + 1``, ``w_l = r - y``, ``w_r = y - l``.
    """
    left = target.long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    weight_right = target - left.to(target.dtype)
    log_prob = F.log_softmax(pred, dim=-1)
    right = right.clamp(max=pred.size(-1) - 1)
    return -(log_prob.gather(-1, left[..., None])[..., 0] * weight_left +
             log_prob.gather(-1, right[..., None])[..., 0] * weight_right)


@MODELS.register_module()
class DistributionFocalLoss(LossMixin, nn.Module):
    """Distribution Focal Loss of a distribution box head.

    Args:
        reduction: 'none', 'mean' or 'sum'.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None,
                avg_factor: float | torch.Tensor | None = None,
                reduction_override: str | None = None) -> torch.Tensor:
        """Args: pred (N, ..., R) logits; target (N, ...) bin distances;
        weight (N,) or (N, ...)."""
        loss = distribution_focal_loss(pred, target.to(pred.dtype))
        return self._reduce(loss, weight, avg_factor, reduction_override)
