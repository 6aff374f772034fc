"""Weighting and reduction shared by the losses (mmdet's convention:
``reduction`` 'none' | 'mean' | 'sum', ``avg_factor`` replaces the element
count of 'mean')."""
from __future__ import annotations

import torch

REDUCTIONS = ('none', 'mean', 'sum')


def weight_reduce_loss(loss: torch.Tensor, weight: torch.Tensor | None = None,
                       reduction: str = 'mean',
                       avg_factor: float | torch.Tensor | None = None,
                       eps: float = 1e-12) -> torch.Tensor:
    """Weight an element-wise loss and reduce it.

    Args:
        loss: (N, ...) element-wise loss.
        weight: (N, ...) weights, or (N,) broadcast over the trailing
            dimensions of ``loss``; None for 1.
        reduction: 'none', 'mean' or 'sum'.
        avg_factor: divisor of the sum for 'mean' (e.g. the number of
            positives); None averages over the elements.

    Returns:
        the reduced loss (a scalar unless ``reduction`` is 'none').
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                         f'{reduction!r}')
    if weight is not None:
        while weight.dim() < loss.dim():
            weight = weight[..., None]
        loss = loss * weight
    if reduction == 'none':
        return loss
    if avg_factor is None:
        return loss.mean() if reduction == 'mean' else loss.sum()
    if reduction == 'sum':
        raise ValueError("avg_factor only applies to reduction='mean'")
    return loss.sum() / (avg_factor + eps)


class LossMixin:
    """``reduction`` / ``loss_weight`` handling of the loss modules."""

    reduction: str
    loss_weight: float

    def _reduce(self, loss: torch.Tensor, weight: torch.Tensor | None,
                avg_factor: float | torch.Tensor | None,
                reduction_override: str | None) -> torch.Tensor:
        reduction = reduction_override or self.reduction
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction,
                                                     avg_factor)
