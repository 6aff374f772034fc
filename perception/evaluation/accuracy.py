"""Top-k classification accuracy as an mmengine metric."""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.evaluator import BaseMetric

from perception.registry import METRICS


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy (percent) of ``pred_score`` against ``gt_label``."""

    default_prefix = 'accuracy'

    def __init__(self, topk: int | Sequence[int] = (1, ), **kwargs) -> None:
        super().__init__(**kwargs)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            sample = sample if isinstance(sample, dict) else sample.to_dict()
            self.results.append((sample['pred_score'].cpu(),
                                 int(sample['gt_label'][0])))

    def compute_metrics(self, results: list) -> dict:
        scores = torch.stack([r[0] for r in results])
        labels = torch.tensor([r[1] for r in results])
        metrics = {}
        for k in self.topk:
            top = scores.topk(min(k, scores.shape[1]), dim=1).indices
            hit = (top == labels[:, None]).any(dim=1).float().mean().item()
            metrics[f'top{k}'] = 100.0 * hit
        return metrics
