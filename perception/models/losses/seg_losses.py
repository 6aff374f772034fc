"""Losses of segmentation and classification heads: cross-entropy with an
ignore index (pixels or samples labelled ``ignore_index`` count for
nothing) and the soft Dice loss (Milletari et al. 2016, "V-Net")."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from perception.registry import MODELS
from perception.structures import SEG_IGNORE_INDEX


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy over class logits.

    Args:
        ignore_index: label that contributes neither loss nor count.
        class_weight: per-class weights (rare classes up), or None.
        loss_weight: multiplier of the result.
        label_smoothing: as in ``torch.nn.functional.cross_entropy``.
    """

    def __init__(self, ignore_index: int = SEG_IGNORE_INDEX,
                 class_weight: Sequence[float] | None = None,
                 loss_weight: float = 1.0,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.class_weight = None if class_weight is None else \
            [float(w) for w in class_weight]
        self.loss_weight = float(loss_weight)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor
                ) -> torch.Tensor:
        """Args: logits (Tensor): (B, C) or (B, C, H, W); labels (Tensor):
        (B,) or (B, H, W) int64. Returns: the mean over counted elements
        (0 when every label is ignored)."""
        weight = None if self.class_weight is None else torch.tensor(
            self.class_weight, device=logits.device, dtype=torch.float32)
        counted = labels != self.ignore_index
        if not counted.any():
            return logits.sum() * 0.0
        loss = F.cross_entropy(logits.float(), labels, weight=weight,
                               ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)
        return self.loss_weight * loss


@MODELS.register_module()
class DiceLoss(nn.Module):
    """Soft Dice loss of softmax probabilities against one-hot labels,
    averaged over the classes present in the batch; ignored pixels are left
    out of both.

    Args:
        ignore_index: label of pixels left out.
        smooth: added to numerator and denominator.
        loss_weight: multiplier of the result.
    """

    def __init__(self, ignore_index: int = SEG_IGNORE_INDEX,
                 smooth: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.smooth = float(smooth)
        self.loss_weight = float(loss_weight)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor
                ) -> torch.Tensor:
        """Args: logits (Tensor): (B, C, H, W); labels (Tensor): (B, H, W)
        int64."""
        num_classes = logits.shape[1]
        valid = (labels != self.ignore_index)
        probs = logits.float().softmax(1) * valid[:, None]
        target = F.one_hot(torch.where(valid, labels, 0), num_classes)
        target = target.permute(0, 3, 1, 2).float() * valid[:, None]
        inter = (probs * target).sum((0, 2, 3))
        total = probs.sum((0, 2, 3)) + target.sum((0, 2, 3))
        dice = (2 * inter + self.smooth) / (total + self.smooth)
        present = target.sum((0, 2, 3)) > 0
        if not present.any():
            return logits.sum() * 0.0
        return self.loss_weight * (1 - dice[present]).mean()
