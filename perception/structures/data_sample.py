"""The data-sample contract shared by every task and plugin.

A :class:`DataSample` carries ground truth and predictions of one image:

* ``gt_instances`` / ``pred_instances`` (mmengine ``InstanceData``):
  ``bboxes`` float32 (N, 4) xyxy in pixel-edge coordinates of the current
  image (a box covering pixels 0..9 is [0, 10]), ``labels`` int64,
  ``scores`` float32, ``ignore_flags`` bool (ignore regions and crowd boxes).
* ``gt_label`` / ``pred_label`` / ``pred_score`` for classification.
* ``gt_sem_seg`` / ``pred_sem_seg`` (mmengine ``PixelData``) for semantic
  segmentation: ``data`` int64 (1, H, W) class indices, pixels labelled
  :data:`SEG_IGNORE_INDEX` (255) are neither counted by the loss nor by the
  metric; ``seg_logits`` (C, H, W) float32 where a model keeps them.
* meta keys: ``img_path``, ``img_shape``, ``ori_shape``, ``scale_factor``,
  ``homography_matrix`` (current image <- original), ``camera``,
  ``timestamp_ns``, ``intrinsics``; for CT ``series_uid``, ``slice_index``,
  ``affine``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmengine.structures import BaseDataElement, InstanceData, PixelData

#: BDD100K's ten detection classes: the unified driving taxonomy.
DRIVING_CLASSES = ('pedestrian', 'rider', 'car', 'truck', 'bus', 'train',
                   'motorcycle', 'bicycle', 'traffic light', 'traffic sign')
#: Label of pixels that are neither class nor background (unlabelled,
#: out of the image after a transform): the segmentation loss and metric
#: skip them (mmsegmentation's and BDD100K's 255).
SEG_IGNORE_INDEX = 255


def _as_tensor(value, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(dtype)
    return torch.as_tensor(np.asarray(value), dtype=dtype)


def make_sem_seg(labels) -> PixelData:
    """A ``PixelData`` holding an (H, W) or (1, H, W) label map as int64
    (1, H, W) in ``data``."""
    data = _as_tensor(labels, torch.int64)
    if data.ndim == 2:
        data = data[None]
    return PixelData(data=data)


def empty_instances() -> InstanceData:
    """Ground-truth instances with no boxes, in the contract's dtypes."""
    return make_instances(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))


def make_instances(bboxes, labels, ignore_flags=None,
                   scores=None) -> InstanceData:
    """Build an ``InstanceData`` with the contract's dtypes and shapes.

    Args:
        bboxes: (N, 4) xyxy pixel-edge boxes.
        labels: (N,) class indices.
        ignore_flags: (N,) bool, default all False.
        scores: (N,) float, predictions only.
    """
    instances = InstanceData()
    boxes = _as_tensor(bboxes, torch.float32).reshape(-1, 4)
    instances.bboxes = boxes
    instances.labels = _as_tensor(labels, torch.int64).reshape(-1)
    if ignore_flags is None:
        ignore_flags = torch.zeros(len(boxes), dtype=torch.bool)
    instances.ignore_flags = _as_tensor(ignore_flags, torch.bool).reshape(-1)
    if scores is not None:
        instances.scores = _as_tensor(scores, torch.float32).reshape(-1)
    return instances


class DataSample(BaseDataElement):
    """Ground truth and predictions of one sample (image, frame or slice)."""

    # -- detection ----------------------------------------------------------
    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances

    # -- semantic segmentation --------------------------------------------
    @property
    def gt_sem_seg(self) -> PixelData:
        return self._gt_sem_seg

    @gt_sem_seg.setter
    def gt_sem_seg(self, value: PixelData) -> None:
        self.set_field(value, '_gt_sem_seg', dtype=PixelData)

    @gt_sem_seg.deleter
    def gt_sem_seg(self) -> None:
        del self._gt_sem_seg

    @property
    def pred_sem_seg(self) -> PixelData:
        return self._pred_sem_seg

    @pred_sem_seg.setter
    def pred_sem_seg(self, value: PixelData) -> None:
        self.set_field(value, '_pred_sem_seg', dtype=PixelData)

    @pred_sem_seg.deleter
    def pred_sem_seg(self) -> None:
        del self._pred_sem_seg

    # -- classification -----------------------------------------------------
    def set_gt_label(self, label: int | Sequence[int] | torch.Tensor
                     ) -> 'DataSample':
        """Set the ground-truth class index (int64 tensor of shape (1,))."""
        self.set_field(_as_tensor(label, torch.int64).reshape(-1), 'gt_label',
                       dtype=torch.Tensor)
        return self

    def set_pred_score(self, score: torch.Tensor) -> 'DataSample':
        """Set class probabilities (C,) and the arg-max ``pred_label``."""
        score = torch.as_tensor(score, dtype=torch.float32).reshape(-1)
        self.set_field(score, 'pred_score', dtype=torch.Tensor)
        self.set_field(score.argmax().reshape(1), 'pred_label',
                       dtype=torch.Tensor)
        return self
