"""Post-processing of dense detections: score threshold, class-aware NMS,
max detections. Plain torch + torchvision, shared by the eager head and any
backend that returns the head's raw (boxes, scores) (ONNX Runtime,
TensorRT), so an exported model post-processes exactly as the eager one."""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.structures import InstanceData
from torchvision.ops import batched_nms


def postprocess_detections(boxes: torch.Tensor, scores: torch.Tensor,
                           score_thr: float = 0.05, nms_iou: float = 0.6,
                           max_per_img: int = 100, pre_nms_top_k: int = 1000,
                           img_shapes: Sequence[Sequence[int] | None] | None = None
                           ) -> list[InstanceData]:
    """Detections of each image from dense boxes and per-class scores.

    Every (prior, class) pair above ``score_thr`` is a candidate (a prior may
    yield several classes); the ``pre_nms_top_k`` best go through NMS per
    class (``torchvision.ops.batched_nms``), then the ``max_per_img`` best
    are kept.

    Args:
        boxes: (B, N, 4) xyxy boxes in input pixels.
        scores: (B, N, C) class probabilities.
        score_thr: lowest score kept.
        nms_iou: IoU above which the lower-scored box of a class is dropped.
        max_per_img: detections per image at most.
        pre_nms_top_k: candidates per image before NMS at most (<= 0: all).
        img_shapes: (H, W) per image to clip boxes to (the current image
            before padding), or None to leave them unclipped.

    Returns:
        one ``InstanceData`` per image: ``bboxes`` float32 (K, 4),
        ``scores`` float32 (K,), ``labels`` int64 (K,), best first.
    """
    results = []
    num_classes = scores.size(-1)
    for index in range(boxes.size(0)):
        flat = scores[index].reshape(-1)
        keep = (flat > score_thr).nonzero().squeeze(1)
        kept_scores = flat[keep]
        if 0 < pre_nms_top_k < keep.numel():
            kept_scores, order = kept_scores.topk(pre_nms_top_k)
            keep = keep[order]
        labels = keep % num_classes
        bboxes = boxes[index][keep // num_classes]
        shape = img_shapes[index] if img_shapes is not None else None
        if shape is not None:
            h, w = float(shape[0]), float(shape[1])
            bboxes = torch.stack([bboxes[:, 0].clamp(0, w),
                                  bboxes[:, 1].clamp(0, h),
                                  bboxes[:, 2].clamp(0, w),
                                  bboxes[:, 3].clamp(0, h)], dim=1)
        if keep.numel():
            keep_nms = batched_nms(bboxes.float(), kept_scores.float(), labels,
                                   nms_iou)[:max_per_img]
            bboxes, kept_scores, labels = (bboxes[keep_nms],
                                           kept_scores[keep_nms],
                                           labels[keep_nms])
        results.append(InstanceData(bboxes=bboxes.float().reshape(-1, 4),
                                    scores=kept_scores.float(),
                                    labels=labels.long()))
    return results
