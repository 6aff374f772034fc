"""Semantic segmentation head over a feature pyramid: the light decoder of
Semantic FPN (Kirillov et al. 2019, "Panoptic Feature Pyramid Networks"),
which also serves a single ViT map.

Each level goes through a 3x3 convolution (norm, ReLU) and is upsampled
bilinearly to the finest level's size; the sum goes through one more
convolution and a 1x1 classifier. The head computes its loss on logits
upsampled to the batch input size; :class:`~perception.models.Segmentor`
maps predictions back to the source image.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# the losses register the defaults this head builds
import perception.models.losses  # noqa: F401
from perception.errors import UserError
from perception.models.necks._layers import ConvNorm, init_weights
from perception.registry import MODELS
from perception.structures import SEG_IGNORE_INDEX


class SegLabelShapeError(UserError, ValueError):
    """A ground-truth label map does not cover its image."""


@MODELS.register_module()
class FPNSegHead(nn.Module):
    """Sum of upsampled pyramid levels -> per-pixel class logits.

    Args:
        in_channels: channels of every input level (an int for all, or one
            per level).
        num_classes: number of classes (the Segmentor fills it from its
            ``class_names``).
        channels: channels of the decoder.
        norm: norm of the convolutions ('GN', 'BN', 'LN' or None).
        dropout: dropout before the classifier.
        loss: config(s) of the loss(es), summed (default cross-entropy
            with ignore index 255; add ``dict(type='DiceLoss')``).
        ignore_index: label of pixels without a class.
    """

    def __init__(self, in_channels: int | Sequence[int], num_classes: int,
                 channels: int = 64, norm: str | None = 'GN',
                 dropout: float = 0.1,
                 loss: dict | Sequence[dict] = (
                     dict(type='CrossEntropyLoss'), ),
                 ignore_index: int = SEG_IGNORE_INDEX,
                 num_levels: int | None = None) -> None:
        super().__init__()
        if isinstance(in_channels, int):
            in_channels = [in_channels] * (num_levels or 1)
        self.in_channels = [int(c) for c in in_channels]
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.lateral = nn.ModuleList(
            ConvNorm(c, channels, 3, norm=norm, act='relu')
            for c in self.in_channels)
        self.fuse = ConvNorm(channels, channels, 3, norm=norm, act='relu')
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else \
            nn.Identity()
        self.classifier = nn.Conv2d(channels, self.num_classes, 1)
        losses = [loss] if isinstance(loss, dict) else list(loss)
        self.losses = nn.ModuleList(MODELS.build(dict(cfg)) for cfg in losses)
        init_weights(self)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args: feats: one (B, C_i, H_i, W_i) map per level, finest first
        (a single map for a plain ViT). Returns: (B, num_classes, H_0, W_0)
        logits at the finest level."""
        feats = list(feats)[-len(self.lateral):]
        size = feats[0].shape[-2:]
        out = self.lateral[0](feats[0])
        # coarser levels always resized to the finest (no branch on sizes:
        # the exported graph is the same for every input size)
        for conv, feat in zip(self.lateral[1:], feats[1:]):
            out = out + F.interpolate(conv(feat), size=size, mode='bilinear',
                                      align_corners=False)
        return self.classifier(self.dropout(self.fuse(out)))

    def logits(self, feats: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """(B, num_classes, H, W) logits upsampled to ``size`` (H, W)."""
        return F.interpolate(self(feats), size=tuple(size), mode='bilinear',
                             align_corners=False)

    def loss(self, feats: Sequence[Tensor], data_samples, size: Sequence[int]
             ) -> dict[str, Tensor]:
        """Losses of the logits at the batch input ``size`` against each
        sample's ``gt_sem_seg`` (padding and unlabelled pixels ignored)."""
        logits = self.logits(feats, size)
        labels = stack_labels(data_samples, size, self.ignore_index
                              ).to(logits.device)
        out = {}
        for loss in self.losses:
            name = 'loss_' + type(loss).__name__.replace('Loss', '').lower()
            out[name] = loss(logits, labels)
        return out


def stack_labels(data_samples, size: Sequence[int],
                 ignore_index: int = SEG_IGNORE_INDEX) -> torch.Tensor:
    """(B, H, W) int64 labels: each sample's ``gt_sem_seg`` in the top-left
    corner of the padded batch ``size``, the padding ``ignore_index``."""
    height, width = int(size[0]), int(size[1])
    labels = torch.full((len(data_samples), height, width), ignore_index,
                        dtype=torch.int64)
    for i, sample in enumerate(data_samples):
        seg = sample.gt_sem_seg.data[0]
        img_shape = sample.metainfo.get('img_shape', seg.shape)
        if tuple(seg.shape) != tuple(img_shape[:2]) or \
                seg.shape[0] > height or seg.shape[1] > width:
            raise SegLabelShapeError(
                f"{sample.metainfo.get('img_path', 'a sample')}: the label "
                f'map is {tuple(seg.shape)} but the image '
                f'{tuple(img_shape[:2])} (height, width); in training '
                'pipelines put LoadSegMap before the geometric transforms')
        labels[i, :seg.shape[0], :seg.shape[1]] = seg
    return labels
