"""Backbones, necks, heads, data preprocessors and whole models."""
from perception.models.classifier import TimmClassifier
from perception.models.data_preprocessor import (
    PerceptionDataPreprocessor, build_data_preprocessor)

__all__ = ["TimmClassifier", "PerceptionDataPreprocessor", "build_data_preprocessor"]
