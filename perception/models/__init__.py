"""Backbones, necks, heads, data preprocessors and whole models."""
from perception.models.backbones import ConvNeXt, VisionTransformer
from perception.models.classifier import TimmClassifier
from perception.models.data_preprocessor import PerceptionDataPreprocessor, build_data_preprocessor
from perception.models.detectors import Detector

__all__ = [
    'VisionTransformer', 'ConvNeXt', 'TimmClassifier', 'Detector',
    'PerceptionDataPreprocessor', 'build_data_preprocessor'
]
