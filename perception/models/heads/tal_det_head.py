"""Anchor-free dense detection head with task-aligned assignment.

Decoupled classification and box branches over every pyramid level (the
design of TOOD, Feng et al., ICCV 2021; RTMDet, Lyu et al., 2022; YOLOv8 /
YOLO11), trained with the task-aligned assigner, a quality-aware
classification loss on soft IoU targets (QFL, Li et al., NeurIPS 2020, or
VFL, Zhang et al., CVPR 2021) and an IoU box loss (GIoU, Rezatofighi et al.,
CVPR 2019), with Distribution Focal Loss when the box branch predicts a
distribution over distances (``reg_max > 0``, GFL / YOLOv8).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import nn

# the losses and task modules register the defaults this head builds
import perception.models.losses  # noqa: F401
from perception.errors import UserError
from perception.models.heads._det_layers import (  # noqa: F401 - their old home
    ConvNormAct,
    Scale,
    branch_tower,
    build_norm,
)
from perception.models.heads.postprocess import postprocess_detections
from perception.models.task_modules import MlvlPointGenerator
from perception.registry import MODELS, TASK_UTILS

#: the clamp of the log-distances before ``exp`` (e**10 strides is far
#: beyond any image), so a diverging step cannot give inf boxes.
MAX_LOG_DISTANCE = 10.0
TEST_CFG = dict(score_thr=0.05, nms_iou=0.6, max_per_img=100,
                pre_nms_top_k=1000)


class HeadLabelError(UserError, ValueError):
    """A ground-truth label does not fit the head's ``num_classes``."""


@MODELS.register_module()
class TALDetHead(BaseModule):
    """Anchor-free detection head: one point prior per feature-map cell,
    boxes as (l, t, r, b) distances from the prior centre.

    Args:
        num_classes: number of object classes (no background class).
        in_channels: channels of every input map (an int, or one equal value
            per level).
        strides: stride of each input level, finest first.
        feat_channels: channels of the branch convs.
        stacked_convs: conv-norm-SiLU units per branch.
        use_depthwise: each unit is depthwise-separable (3x3 depthwise +
            1x1 pointwise, both with norm and SiLU; the light heads of
            YOLO11 / RTMDet-tiny) instead of a full 3x3 conv: about
            ``9 / feat_channels + 1 / 9`` of the multiply-adds.
        reg_max: 0: the box branch predicts log-distances in stride units
            (``exp`` times stride, TOOD / RTMDet); > 0: logits over
            ``reg_max`` bins 0..reg_max-1 (stride units) per side, decoded as
            the expectation and trained with DFL (GFL / YOLOv8).
        share_levels: one set of branch weights for every level (GroupNorm
            suits this); False gives each level its own (BatchNorm suits it).
        norm_cfg: norm of the branch convs, ``dict(type='GN', num_groups=16)``
            by default (works at CPU batches of 1-2), or ``dict(type='BN')``.
        prior_prob: initial foreground probability of the classifier bias.
        assigner: TASK_UTILS config of the assigner.
        bbox_coder: TASK_UTILS config of the box coder.
        loss_cls: MODELS config of the classification loss (soft targets).
        loss_bbox: MODELS config of the box loss (decoded xyxy boxes).
        loss_dfl: MODELS config of the DFL (used when ``reg_max > 0``).
        test_cfg: defaults of :meth:`postprocess`: ``score_thr``,
            ``nms_iou``, ``max_per_img``, ``pre_nms_top_k``.
        init_cfg: mmengine init config.
    """

    def __init__(self, num_classes: int, in_channels: int | Sequence[int],
                 strides: Sequence[int] = (8, 16, 32),
                 feat_channels: int = 96, stacked_convs: int = 2,
                 reg_max: int = 0, share_levels: bool = True,
                 use_depthwise: bool = False,
                 norm_cfg: dict | None = dict(type='GN', num_groups=16),
                 prior_prob: float = 0.01,
                 assigner: dict = dict(type='TaskAlignedAssigner', topk=10,
                                       alpha=0.5, beta=6.0),
                 bbox_coder: dict = dict(type='DistancePointBBoxCoder'),
                 loss_cls: dict = dict(type='QualityFocalLoss', beta=2.0,
                                       loss_weight=1.0),
                 loss_bbox: dict = dict(type='GIoULoss', loss_weight=2.0),
                 loss_dfl: dict = dict(type='DistributionFocalLoss',
                                       loss_weight=0.25),
                 test_cfg: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, int):
            if len(set(in_channels)) != 1 or len(in_channels) != len(strides):
                raise ValueError(
                    f'TALDetHead: in_channels {list(in_channels)} must be '
                    f'one value for all {len(strides)} levels; give the neck '
                    'the same out_channels on every level')
            in_channels = in_channels[0]
        if reg_max < 0 or reg_max == 1:
            raise ValueError(f'TALDetHead: reg_max must be 0 (direct '
                             f'distances) or >= 2 bins, got {reg_max}')
        unknown = set(test_cfg or {}) - set(TEST_CFG)
        if unknown:
            raise ValueError(f'TALDetHead: unknown test_cfg keys '
                             f'{sorted(unknown)}; known: {sorted(TEST_CFG)}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.strides = tuple(strides)
        self.num_levels = len(self.strides)
        self.reg_max = reg_max
        self.share_levels = share_levels
        self.use_depthwise = use_depthwise
        self.prior_prob = prior_prob
        self.test_cfg = {**TEST_CFG, **(test_cfg or {})}
        self.prior_generator = MlvlPointGenerator(self.strides)
        self.assigner = TASK_UTILS.build(assigner)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_dfl = MODELS.build(loss_dfl) if reg_max else None
        self.register_buffer('proj', torch.arange(max(reg_max, 1),
                                                  dtype=torch.float32),
                             persistent=False)

        towers = 1 if share_levels else self.num_levels
        reg_out = 4 * reg_max if reg_max else 4

        def tower() -> nn.Sequential:
            return branch_tower(in_channels, feat_channels, stacked_convs,
                                norm_cfg, depthwise=use_depthwise)

        branch_in = feat_channels if stacked_convs else in_channels
        self.cls_convs = nn.ModuleList(tower() for _ in range(towers))
        self.reg_convs = nn.ModuleList(tower() for _ in range(towers))
        self.cls_preds = nn.ModuleList(
            nn.Conv2d(branch_in, num_classes, 1) for _ in range(towers))
        self.reg_preds = nn.ModuleList(
            nn.Conv2d(branch_in, reg_out, 1) for _ in range(towers))
        self.scales = nn.ModuleList(
            Scale(1.0) if not reg_max else nn.Identity()
            for _ in range(self.num_levels))
        self._init_head()

    def _init_head(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        bias = -math.log((1 - self.prior_prob) / self.prior_prob)
        for pred in self.cls_preds:
            nn.init.constant_(pred.bias, bias)

    # ------------------------------------------------------------ forward
    def forward(self, feats: Sequence[torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Raw outputs of every level.

        Args:
            feats: one (B, in_channels, H_i, W_i) map per level, finest first.

        Returns:
            cls_scores: list of (B, num_classes, H_i, W_i) logits.
            bbox_preds: list of (B, 4, H_i, W_i) log-distances in stride units
                (``reg_max == 0``) or (B, 4 * reg_max, H_i, W_i) bin logits.
        """
        if len(feats) != self.num_levels:
            raise ValueError(f'TALDetHead: got {len(feats)} feature maps for '
                             f'{self.num_levels} strides {self.strides}; the '
                             "neck's outputs and the head's strides must match")
        cls_scores, bbox_preds = [], []
        for level, x in enumerate(feats):
            tower = 0 if self.share_levels else level
            cls_scores.append(self.cls_preds[tower](self.cls_convs[tower](x)))
            reg = self.reg_preds[tower](self.reg_convs[tower](x))
            bbox_preds.append(self.scales[level](reg))
        return cls_scores, bbox_preds

    def decode(self, cls_scores: Sequence[torch.Tensor],
               bbox_preds: Sequence[torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                          torch.Tensor]:
        """Flatten the levels and decode boxes (export-friendly ops only).

        Returns:
            priors: (N, 4) rows (x, y, stride_w, stride_h), N = sum H_i W_i.
            cls_logits: (B, N, num_classes).
            box_logits: (B, N, 4) or (B, N, 4 * reg_max), raw, float32.
            boxes: (B, N, 4) xyxy in input pixels, float32.
        """
        # boxes in float32 whatever the maps' dtype: bf16 would round
        # coordinates of a 1024-pixel image to 4 pixels
        sizes = [score.shape[-2:] for score in cls_scores]
        priors = torch.cat(self.prior_generator.grid_priors(
            sizes, dtype=torch.float32, device=cls_scores[0].device))
        cls_logits = _flatten(cls_scores)
        box_logits = _flatten(bbox_preds).float()
        stride = priors[:, 2:3]
        if self.reg_max:
            bins = box_logits.reshape(*box_logits.shape[:-1], 4, self.reg_max)
            dist = bins.softmax(-1) @ self.proj
        else:
            dist = box_logits.clamp(max=MAX_LOG_DISTANCE).exp()
        boxes = self.bbox_coder.decode(priors, dist * stride)
        return priors, cls_logits, box_logits, boxes

    def predict_raw(self, feats: Sequence[torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """What export takes: decoded boxes and per-class probabilities of
        the whole batch; no NMS, no thresholds, no data-dependent shapes.

        Args:
            feats: one (B, in_channels, H_i, W_i) map per level.

        Returns:
            boxes: (B, N, 4) xyxy in input pixels (unclipped).
            scores: (B, N, num_classes) sigmoid probabilities.
        """
        _, cls_logits, _, boxes = self.decode(*self(feats))
        return boxes, cls_logits.float().sigmoid()

    def postprocess(self, boxes: torch.Tensor, scores: torch.Tensor,
                    score_thr: float | None = None,
                    nms_iou: float | None = None,
                    max_per_img: int | None = None,
                    img_shapes: Sequence[Sequence[int] | None] | None = None
                    ) -> list[InstanceData]:
        """Detections per image (see :func:`postprocess_detections`); None
        arguments take ``test_cfg``'s values.

        Args:
            boxes: (B, N, 4) from :meth:`predict_raw`.
            scores: (B, N, num_classes) from :meth:`predict_raw`.
            img_shapes: (H, W) of each current image (``img_shape``, before
                padding) to clip boxes to; None leaves them unclipped.

        Returns:
            per image an ``InstanceData`` with ``bboxes`` (K, 4) xyxy in the
            current image, ``labels`` (K,), ``scores`` (K,).
        """
        cfg = self.test_cfg
        return postprocess_detections(
            boxes, scores,
            score_thr=cfg['score_thr'] if score_thr is None else score_thr,
            nms_iou=cfg['nms_iou'] if nms_iou is None else nms_iou,
            max_per_img=cfg['max_per_img'] if max_per_img is None
            else max_per_img,
            pre_nms_top_k=cfg['pre_nms_top_k'], img_shapes=img_shapes)

    def predict(self, feats: Sequence[torch.Tensor],
                data_samples: Sequence | None = None) -> list[InstanceData]:
        """:meth:`predict_raw` then :meth:`postprocess`, clipped to each
        sample's ``img_shape``; boxes stay in current-image coordinates."""
        boxes, scores = self.predict_raw(feats)
        shapes = None
        if data_samples is not None:
            shapes = [s.metainfo.get('img_shape',
                                     s.metainfo.get('batch_input_shape'))
                      for s in data_samples]
        return self.postprocess(boxes, scores, img_shapes=shapes)

    # --------------------------------------------------------------- loss
    def loss(self, feats: Sequence[torch.Tensor],
             data_samples: Sequence) -> dict[str, torch.Tensor]:
        """Losses of a batch.

        Args:
            feats: one (B, in_channels, H_i, W_i) map per level.
            data_samples: B ``DataSample`` with ``gt_instances`` (``bboxes``
                (M, 4) xyxy in the padded input, ``labels`` (M,),
                ``ignore_flags`` (M,); label -1 also marks an ignore region).

        Returns:
            ``loss_cls``, ``loss_bbox`` (and ``loss_dfl`` when
            ``reg_max > 0``), scalars.
        """
        return self.loss_by_feat(*self(feats), data_samples)

    def loss_by_feat(self, cls_scores: Sequence[torch.Tensor],
                     bbox_preds: Sequence[torch.Tensor],
                     data_samples: Sequence) -> dict[str, torch.Tensor]:
        """Losses from the outputs of :meth:`forward` (see :meth:`loss`)."""
        priors, cls_logits, box_logits, boxes = self.decode(
            [s.float() for s in cls_scores], [b.float() for b in bbox_preds])
        probs = cls_logits.detach().sigmoid()
        results = [self.assigner.assign(probs[i], boxes[i].detach(), priors,
                                        *self._ground_truth(sample,
                                                            priors.device))
                   for i, sample in enumerate(data_samples)]
        gt_inds = torch.stack([r.gt_inds for r in results])  # (B, N)
        labels = torch.stack([r.labels for r in results])
        target_scores = torch.stack([r.scores for r in results])
        target_boxes = torch.stack([r.bboxes for r in results])  # (B, N, 4)

        onehot = F.one_hot(labels, self.num_classes + 1)[..., :-1]
        cls_targets = onehot.to(cls_logits.dtype) * target_scores[..., None]
        avg_factor = target_scores.sum().detach()
        all_reduce(avg_factor, op='mean')
        avg_factor = avg_factor.clamp(min=1.0)
        losses = dict(loss_cls=self.loss_cls(
            cls_logits.reshape(-1, self.num_classes),
            cls_targets.reshape(-1, self.num_classes),
            weight=(gt_inds >= 0).to(cls_logits.dtype).reshape(-1),
            avg_factor=avg_factor))

        pos = gt_inds > 0
        if not pos.any():  # keep the box branch in the graph (DDP)
            zero = box_logits.sum() * 0
            losses['loss_bbox'] = zero
            if self.reg_max:
                losses['loss_dfl'] = zero
            return losses
        weight = target_scores[pos]
        losses['loss_bbox'] = self.loss_bbox(boxes[pos], target_boxes[pos],
                                             weight=weight,
                                             avg_factor=avg_factor)
        if self.reg_max:
            pos_priors = priors.expand(pos.size(0), -1, -1)[pos]
            sides = self.bbox_coder.encode(pos_priors, target_boxes[pos])
            sides = (sides / pos_priors[:, 2:3]).clamp(0, self.reg_max - 1.01)
            bins = box_logits[pos].reshape(-1, 4, self.reg_max)
            losses['loss_dfl'] = self.loss_dfl(bins, sides, weight=weight,
                                               avg_factor=4 * avg_factor)
        return losses

    def _ground_truth(self, sample, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(boxes (M, 4), labels (M,), ignore regions (K, 4)) of a sample."""
        gt = sample.gt_instances
        bboxes = torch.as_tensor(gt.bboxes).to(device, torch.float32)
        bboxes = bboxes.reshape(-1, 4)
        labels = torch.as_tensor(gt.labels).to(device, torch.long).reshape(-1)
        ignore = labels < 0
        if 'ignore_flags' in gt:
            ignore = ignore | torch.as_tensor(gt.ignore_flags).to(
                device, torch.bool).reshape(-1)
        keep = ~ignore
        if keep.any() and int(labels[keep].max()) >= self.num_classes:
            where = sample.metainfo.get('img_path', 'a training sample')
            raise HeadLabelError(
                f'TALDetHead: label {int(labels[keep].max())} in {where} is '
                f'out of range for num_classes={self.num_classes}; set the '
                "head's num_classes to the dataset's number of classes")
        return bboxes[keep], labels[keep], bboxes[ignore]


def _flatten(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-level (B, K, H_i, W_i) maps -> (B, sum H_i W_i, K), row-major."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.size(0), -1, m.size(1))
                      for m in maps], dim=1)

