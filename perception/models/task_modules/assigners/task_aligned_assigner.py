"""Task-aligned assigner of TOOD (Feng et al., "TOOD: Task-aligned One-stage
Object Detection", ICCV 2021), in the form YOLOv8 / YOLO11 use it."""
from __future__ import annotations

import torch

from perception.models.task_modules.assigners.assign_result import AssignResult
from perception.models.task_modules.iou import bbox_overlaps
from perception.registry import TASK_UTILS


@TASK_UTILS.register_module()
class TaskAlignedAssigner:
    """Assign priors to ground truth by the task-alignment metric
    ``t = s**alpha * IoU**beta`` (s: the predicted score of the box's class,
    IoU: of the predicted box with the ground truth).

    For each ground-truth box the candidates are the priors whose centre lies
    strictly inside it (a box that holds no centre, smaller than the finest
    stride, takes the prior nearest its centre instead); its ``topk``
    candidates of highest ``t`` become positives. A prior claimed by several
    boxes goes to the one its predicted box overlaps most. Each positive's
    soft target is ``t / max_t * max_IoU`` over the positives of its box,
    so the best-aligned prior of a box aims at that box's best IoU.

    Ignore regions (crowd boxes, DontCare) are given apart: priors one of them
    would take as a candidate (centre inside, or nearest for a tiny region)
    and that no real box took as a positive are ignored: zero weight as
    negatives (mmdet's habit: an ignore region never takes a real object's
    positives away; DontCare regions often overlap labelled objects).

    Args:
        topk: positives per ground-truth box at most.
        alpha: exponent of the classification score.
        beta: exponent of the IoU.
        iou_mode: overlap of predicted and ground-truth boxes, 'iou' (TOOD)
            or 'ciou' (YOLOv8), negative values clamped to 0.
        eps: guards divisions.
    """

    def __init__(self, topk: int = 10, alpha: float = 0.5, beta: float = 6.0,
                 iou_mode: str = 'iou', eps: float = 1e-9) -> None:
        if topk < 1:
            raise ValueError(f'TaskAlignedAssigner: topk must be >= 1, got '
                             f'{topk}')
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.iou_mode = iou_mode
        self.eps = eps

    @staticmethod
    def candidates(centers: torch.Tensor,
                   boxes: torch.Tensor) -> torch.Tensor:
        """Priors each box takes as candidates.

        Args:
            centers: (N, 2) prior centres (x, y).
            boxes: (M, 4) xyxy boxes.

        Returns:
            (M, N) bool: centre strictly inside the box; for a box with no
            centre inside, the single prior nearest the box centre.
        """
        x, y = centers[None, :, 0], centers[None, :, 1]
        inside = ((x > boxes[:, None, 0]) & (x < boxes[:, None, 2]) &
                  (y > boxes[:, None, 1]) & (y < boxes[:, None, 3]))
        empty = ~inside.any(dim=1)
        if empty.any() and centers.numel():
            box_centres = (boxes[empty, :2] + boxes[empty, 2:]) / 2
            nearest = torch.cdist(box_centres, centers[:, :2]).argmin(dim=1)
            rows = empty.nonzero().squeeze(1)
            inside[rows, nearest] = True
        return inside

    @torch.no_grad()
    def assign(self, pred_scores: torch.Tensor, pred_bboxes: torch.Tensor,
               priors: torch.Tensor, gt_bboxes: torch.Tensor,
               gt_labels: torch.Tensor,
               ignore_bboxes: torch.Tensor | None = None) -> AssignResult:
        """Assign the priors of one image.

        Args:
            pred_scores: (N, C) predicted class probabilities (after sigmoid).
            pred_bboxes: (N, 4) predicted xyxy boxes, decoded, in pixels.
            priors: (N, 2+) priors, (x, y) centre first.
            gt_bboxes: (M, 4) xyxy ground-truth boxes (no ignore regions).
            gt_labels: (M,) int64 classes in [0, C).
            ignore_bboxes: (K, 4) xyxy ignore regions, or None.

        Returns:
            :class:`AssignResult` over the N priors.
        """
        num_priors, num_classes = pred_scores.shape
        num_gts = gt_bboxes.size(0)
        device = pred_scores.device
        result = AssignResult.all_negative(num_priors, num_classes, num_gts,
                                           device, pred_bboxes.dtype)
        centers = priors[:, :2]
        ignored = torch.zeros(num_priors, dtype=torch.bool, device=device)
        if ignore_bboxes is not None and ignore_bboxes.numel():
            ignored = self.candidates(centers, ignore_bboxes).any(dim=0)
            result.gt_inds[ignored] = -1
        if num_gts == 0 or num_priors == 0:
            return result

        cand = self.candidates(centers, gt_bboxes)
        ious = bbox_overlaps(gt_bboxes, pred_bboxes,
                             mode=self.iou_mode).clamp(min=0)  # (M, N)
        scores = pred_scores[:, gt_labels].T  # (M, N)
        metric = scores.pow(self.alpha) * ious.pow(self.beta)

        k = min(self.topk, num_priors)
        top = torch.where(cand, metric, -1.0).topk(k, dim=1).indices
        pos = torch.zeros_like(cand).scatter_(1, top, True) & cand  # (M, N)

        # a prior claimed by several boxes: the box it overlaps most
        multi = pos.sum(dim=0) > 1
        if multi.any():
            best = torch.where(pos, ious, -1.0).argmax(dim=0)  # (N,)
            best_onehot = torch.zeros_like(pos)
            best_onehot[best, torch.arange(num_priors, device=device)] = True
            pos = torch.where(multi[None], pos & best_onehot, pos)

        is_pos = pos.any(dim=0)
        assigned = pos.to(torch.uint8).argmax(dim=0)  # (N,)
        metric = metric * pos
        max_metric = metric.amax(dim=1, keepdim=True)
        max_iou = (ious * pos).amax(dim=1, keepdim=True)
        target = (metric * max_iou / (max_metric + self.eps)).amax(dim=0)

        idx = assigned[is_pos]
        result.gt_inds[is_pos] = idx + 1  # positives win over ignore regions
        result.labels[is_pos] = gt_labels[idx]
        result.bboxes[is_pos] = gt_bboxes[idx].to(result.bboxes.dtype)
        result.scores[is_pos] = target[is_pos].to(result.scores.dtype)
        return result
