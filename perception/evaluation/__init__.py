"""Metrics: accuracy, COCO-style AP (through a COCO eval library)."""
from perception.evaluation.accuracy import Accuracy
from perception.evaluation.coco_metric import CocoMetric, evaluate_coco

__all__ = ["Accuracy", "CocoMetric", "evaluate_coco"]
