"""Backbones, necks, heads, data preprocessors and whole models."""
from perception.models.backbones import ConvNeXt, TimmBackbone, VisionTransformer
from perception.models.classifier import TimmClassifier
from perception.models.classifiers import Classifier
from perception.models.data_preprocessor import PerceptionDataPreprocessor, build_data_preprocessor
from perception.models.detectors import Detector
from perception.models.heads import FPNSegHead, LinearClsHead, MLPClsHead, TALDetHead
from perception.models.losses import (
                                           CIoULoss,
                                           CrossEntropyLoss,
                                           DiceLoss,
                                           DistributionFocalLoss,
                                           GIoULoss,
                                           QualityFocalLoss,
                                           VarifocalLoss,
)
from perception.models.necks import FPN, PAFPN, SimpleFPN
from perception.models.segmentors import Segmentor
from perception.models.task_modules import (
                                           DistancePointBBoxCoder,
                                           MlvlPointGenerator,
                                           TaskAlignedAssigner,
)

__all__ = [
    'VisionTransformer', 'ConvNeXt', 'TimmBackbone', 'TimmClassifier',
    'SimpleFPN', 'FPN', 'PAFPN', 'Detector',
    'PerceptionDataPreprocessor', 'build_data_preprocessor', 'TALDetHead',
    'CIoULoss', 'DistributionFocalLoss', 'GIoULoss', 'QualityFocalLoss',
    'VarifocalLoss', 'DistancePointBBoxCoder', 'MlvlPointGenerator',
    'TaskAlignedAssigner', 'Segmentor', 'Classifier', 'FPNSegHead',
    'LinearClsHead', 'MLPClsHead', 'CrossEntropyLoss', 'DiceLoss'
]
