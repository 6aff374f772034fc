"""Metrics: accuracy, COCO-style AP (through a COCO eval library)."""
from perception.evaluation.accuracy import Accuracy

__all__ = ["Accuracy"]
