"""Per-image detection recall, precision and F1: a metric whose value is a
mean over images, so a subgroup report can bootstrap it over thousands of
images cheaply (COCO AP re-runs the whole evaluation per resample).

Each image's predictions with ``score >= score_thr`` are matched greedily,
highest score first, to the unmatched ground-truth box of their class with
the highest IoU, if that IoU is at least ``iou_thr`` (a true positive).
A prediction left unmatched that overlaps an ignore region (``ignore_flags``,
or a class-agnostic box labelled -1) by at least ``iou_thr`` counts as
neither; any other is a false positive, and unmatched ground truth boxes are
misses. Per image: recall = TP / (TP + FN) (images without ground truth are
left out), precision = TP / (TP + FP) (images without predictions are left
out), F1 of the two (left out where either is). Boxes are compared as
:class:`~perception.evaluation.coco_metric.CocoMetric` compares them (source
pixels when the samples carry a ``homography_matrix``).
"""
from __future__ import annotations

import numpy as np

from perception.evaluation.coco_metric import CocoMetric
from perception.registry import METRICS


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes ``a`` (N, 4) against ``b`` (M, 4): (N, M)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(
        -1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_image(result: dict, score_thr: float, iou_thr: float
                ) -> tuple[int, int, int]:
    """(TP, FP, FN) of one image's record (CocoMetric's per-image result)."""
    keep = np.flatnonzero(result['scores'] >= score_thr)
    keep = keep[np.argsort(-result['scores'][keep], kind='stable')]
    boxes = result['pred_bboxes'].reshape(-1, 4)[keep]
    labels = result['pred_labels'][keep]
    gt_labels = result['gt_labels'].astype(int)
    ignore = gt_labels < 0
    if len(result['gt_ignore']) == len(gt_labels):
        ignore = ignore | result['gt_ignore']
    counted = ~ignore
    iou = box_iou(boxes, result['gt_bboxes'])
    taken = np.zeros(len(gt_labels), bool)
    tp = fp = 0
    for i, label in enumerate(labels.astype(int)):
        free = counted & ~taken & (gt_labels == label)
        overlap = np.where(free, iou[i], -1.0)
        j = int(np.argmax(overlap)) if len(overlap) else -1
        if j >= 0 and overlap[j] >= iou_thr:
            taken[j] = True
            tp += 1
        elif not (ignore & (iou[i] >= iou_thr)).any():
            fp += 1
    return tp, fp, int(counted.sum()) - tp


@METRICS.register_module()
class PerImageDetectionMetric(CocoMetric):
    """Mean per-image recall, precision and F1 (module docstring).

    Args:
        score_thr: lowest score of a prediction that counts.
        iou_thr: overlap of a match.
        **kwargs: :class:`CocoMetric` arguments (``map_back``, ...).
    """

    default_prefix = 'det'

    def __init__(self, score_thr: float = 0.3, iou_thr: float = 0.5,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.score_thr, self.iou_thr = float(score_thr), float(iou_thr)

    def compute_metrics(self, results: list) -> dict:
        recall, precision, f1 = [], [], []
        for result in results:
            tp, fp, fn = match_image(result, self.score_thr, self.iou_thr)
            r = tp / (tp + fn) if tp + fn else None
            p = tp / (tp + fp) if tp + fp else None
            if r is not None:
                recall.append(r)
            if p is not None:
                precision.append(p)
            if r is not None and p is not None:
                f1.append(2 * p * r / (p + r) if p + r else 0.0)

        def mean(values):
            return float(np.mean(values)) if values else float('nan')
        return dict(recall=mean(recall), precision=mean(precision),
                    f1=mean(f1), images=len(results))
