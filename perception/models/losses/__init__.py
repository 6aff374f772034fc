"""Losses of heads (in ``MODELS``): quality-aware classification (QFL,
VFL), IoU-based boxes (GIoU, CIoU), distribution focal loss; cross-entropy
with an ignore index and Dice (segmentation, classification)."""
from perception.models.losses.distribution_focal_loss import DistributionFocalLoss
from perception.models.losses.iou_loss import CIoULoss, GIoULoss
from perception.models.losses.quality_focal_loss import QualityFocalLoss, VarifocalLoss
from perception.models.losses.seg_losses import CrossEntropyLoss, DiceLoss
from perception.models.losses.utils import weight_reduce_loss

__all__ = ['QualityFocalLoss', 'VarifocalLoss', 'GIoULoss', 'CIoULoss',
           'DistributionFocalLoss', 'weight_reduce_loss', 'CrossEntropyLoss',
           'DiceLoss']
