"""Semantic segmentation metrics: mean and per-class intersection over
union, pixel accuracy (mmsegmentation's ``IoUMetric`` numbers), from one
confusion matrix accumulated over the split.

Predictions (``pred_sem_seg``) are compared in source pixels: a model that
marks ``pred_space='source'`` (the core Segmentor) is compared with the
ground truth as loaded after the geometric transforms (``LoadSegMap`` at
the end of a test pipeline); a ground truth that went through the
transforms is mapped back first (nearest neighbour).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from perception.data.geometry import preds_in_source, sample_meta
from perception.data.seg_geometry import seg_to_source
from perception.errors import UserError
from perception.registry import METRICS
from perception.structures import SEG_IGNORE_INDEX


class SegMetricError(UserError, ValueError):
    """Predictions and ground truth of a sample cannot be compared."""


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int,
              ignore_index: int = SEG_IGNORE_INDEX) -> np.ndarray:
    """(num_classes, num_classes) counts, rows ground truth, columns
    prediction; ignored ground-truth pixels are left out."""
    keep = (gt != ignore_index) & (gt >= 0) & (gt < num_classes)
    index = gt[keep].astype(np.int64) * num_classes + pred[keep].clip(
        0, num_classes - 1).astype(np.int64)
    return np.bincount(index, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def iou_from_confusion(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class IoU and accuracy (NaN for classes in neither ground truth
    nor prediction), and overall pixel accuracy, as fractions."""
    matrix = matrix.astype(np.float64)
    inter = np.diag(matrix)
    gt_area, pred_area = matrix.sum(1), matrix.sum(0)
    union = gt_area + pred_area - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, inter / union, np.nan)
        acc = np.where(gt_area > 0, inter / gt_area, np.nan)
    total = matrix.sum()
    return dict(iou=iou, acc=acc,
                aacc=np.array(inter.sum() / total if total else np.nan))


@METRICS.register_module()
class IoUMetric(BaseMetric):
    """mIoU, per-class IoU, mean class accuracy and pixel accuracy, in
    percent: ``seg/mIoU``, ``seg/mAcc``, ``seg/aAcc``, ``seg/IoU.<class>``.
    The mean is over classes present in the ground truth or predictions.

    Args:
        num_classes: default the number of the dataset's ``classes``.
        ignore_index: ground-truth label left out.
        classwise: also report ``seg/IoU.<class>`` (always logged).
    """

    default_prefix = 'seg'

    def __init__(self, num_classes: int | None = None,
                 ignore_index: int = SEG_IGNORE_INDEX, classwise: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = int(ignore_index)
        self.classwise = classwise

    def _classes(self) -> list[str]:
        classes = list((self.dataset_meta or {}).get('classes') or [])
        count = self.num_classes or len(classes)
        if not count:
            raise SegMetricError('IoUMetric: the dataset names no classes; '
                                 'give IoUMetric(num_classes=N)')
        return (classes + [str(i) for i in range(len(classes), count)]
                )[:count]

    def process(self, data_batch, data_samples: Sequence) -> None:
        count = len(self._classes())
        for sample in data_samples:
            pred = _data(sample, 'pred_sem_seg')
            gt = _data(sample, 'gt_sem_seg')
            if gt.shape != pred.shape and preds_in_source(sample) and \
                    tuple(gt.shape) == tuple(sample_meta(sample, 'img_shape')
                                             or ()):
                gt = seg_to_source(sample, gt, mode='nearest',
                                   source_shape=pred.shape)
            if gt.shape != pred.shape:
                raise SegMetricError(
                    f"{sample_meta(sample, 'img_path')}: prediction "
                    f'{tuple(pred.shape)} and ground truth {tuple(gt.shape)} '
                    'differ in size; load the ground truth with LoadSegMap '
                    'after the geometric transforms of the test pipeline')
            self.results.append(confusion(pred.numpy(), gt.numpy(), count,
                                          self.ignore_index))

    def compute_metrics(self, results: list) -> dict:
        classes = self._classes()
        scores = iou_from_confusion(np.sum(results, axis=0))
        iou, acc = scores['iou'] * 100, scores['acc'] * 100
        metrics = {'mIoU': float(np.nanmean(iou)) if np.isfinite(iou).any()
                   else 0.0,
                   'mAcc': float(np.nanmean(acc)) if np.isfinite(acc).any()
                   else 0.0,
                   'aAcc': float(scores['aacc'] * 100)}
        rows = [f'{name:>16s} {v:6.2f}' for name, v in zip(classes, iou)]
        print_log('per-class IoU (%):\n' + '\n'.join(rows), logger='current')
        if self.classwise:
            for name, value in zip(classes, iou):
                metrics[f'IoU.{name}'] = float(value)
        return metrics


def _data(sample, field: str) -> torch.Tensor:
    """(H, W) labels of ``field`` of a DataSample or its dict."""
    value = sample.get(field) if hasattr(sample, 'get') else None
    if value is None:
        raise SegMetricError(f'IoUMetric: a sample has no {field}; test a '
                             'Segmentor on a dataset with label maps')
    data = value['data'] if isinstance(value, dict) else value.data
    return torch.as_tensor(data).reshape(data.shape[-2:]).cpu()
