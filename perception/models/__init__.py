"""Backbones, necks, heads, data preprocessors and whole models."""
# Safe checkpoint loading for init_cfg=dict(type='Pretrained') also when a
# model is built and initialised outside a Runner.
import perception.engine.checkpoint  # noqa: F401
from perception.models.backbones import ConvNeXt, VisionTransformer
from perception.models.classifier import TimmClassifier
from perception.models.data_preprocessor import (PerceptionDataPreprocessor,
                                                 build_data_preprocessor)

__all__ = [
    'VisionTransformer', 'ConvNeXt', 'TimmClassifier',
    'PerceptionDataPreprocessor', 'build_data_preprocessor'
]
