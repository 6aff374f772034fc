"""Backbones, necks, heads, data preprocessors and whole models."""
from perception.models.backbones import ConvNeXt, VisionTransformer
from perception.models.classifier import TimmClassifier
from perception.models.data_preprocessor import PerceptionDataPreprocessor, build_data_preprocessor

__all__ = [
    'VisionTransformer', 'ConvNeXt', 'TimmClassifier',
    'PerceptionDataPreprocessor', 'build_data_preprocessor'
]
