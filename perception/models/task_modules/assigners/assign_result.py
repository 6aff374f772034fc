"""What an assigner decided for each prior of one image."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AssignResult:
    """Assignment of the N priors of one image.

    Attributes:
        gt_inds: (N,) int64: -1 ignored (neither positive nor negative),
            0 negative, j + 1 positive for ground-truth box j.
        labels: (N,) int64 class of the assigned box; ``num_classes``
            (background) for negatives and ignored priors.
        bboxes: (N, 4) xyxy box assigned to each positive; zeros elsewhere.
        scores: (N,) soft classification target of each positive (the
            normalized alignment of TOOD), 0 elsewhere.
        num_gts: number of (non-ignore) ground-truth boxes.
    """

    gt_inds: torch.Tensor
    labels: torch.Tensor
    bboxes: torch.Tensor
    scores: torch.Tensor
    num_gts: int

    @property
    def pos_mask(self) -> torch.Tensor:
        """(N,) bool: positives."""
        return self.gt_inds > 0

    @property
    def neg_mask(self) -> torch.Tensor:
        """(N,) bool: negatives (background)."""
        return self.gt_inds == 0

    @property
    def ignore_mask(self) -> torch.Tensor:
        """(N,) bool: ignored priors (zero weight in every loss)."""
        return self.gt_inds < 0

    @classmethod
    def all_negative(cls, num_priors: int, num_classes: int, num_gts: int,
                     device: torch.device | str = 'cpu',
                     dtype: torch.dtype = torch.float32) -> 'AssignResult':
        """A result with every prior negative."""
        return cls(
            gt_inds=torch.zeros(num_priors, dtype=torch.long, device=device),
            labels=torch.full((num_priors, ), num_classes, dtype=torch.long,
                              device=device),
            bboxes=torch.zeros(num_priors, 4, dtype=dtype, device=device),
            scores=torch.zeros(num_priors, dtype=dtype, device=device),
            num_gts=num_gts)
