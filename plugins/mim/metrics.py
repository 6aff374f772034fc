"""Held-out masked-patch loss as an mmengine metric (val/test loops)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from perception.registry import METRICS


@METRICS.register_module()
class MaskedPatchLoss(BaseMetric):
    """Mean masked-patch loss of a pretraining model on held-out images,
    with fixed masks (the model's ``eval_mask_seed`` and each sample's
    index), next to the loss of predicting each patch's mean (``1.0`` for
    normalized-pixel targets): values below it mean the model learned
    something about the hidden content.

    Reports ``masked_patch_loss`` and ``mean_patch_loss``.
    """

    default_prefix = 'mim'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            get = sample.get if hasattr(sample, 'get') else sample.__getitem__
            loss = get('masked_patch_loss')
            if loss is None:
                raise KeyError(
                    'MaskedPatchLoss needs samples from a masked-image model '
                    "(MAE/FCMAE) in 'predict' mode; this model gave none")
            self.results.append((float(loss),
                                 float(get('mean_patch_loss'))))

    def compute_metrics(self, results: list) -> dict:
        values = np.asarray(results, dtype=np.float64)
        return dict(masked_patch_loss=float(values[:, 0].mean()),
                    mean_patch_loss=float(values[:, 1].mean()))
