"""Metrics: accuracy, COCO-style AP (through a COCO eval library), the
subgroup report."""
from perception.evaluation.accuracy import Accuracy
from perception.evaluation.coco_metric import CocoMetric, evaluate_coco
from perception.evaluation.iou_metric import IoUMetric
from perception.evaluation.per_image import PerImageDetectionMetric
from perception.evaluation.subgroup_metric import SubgroupMetric
from perception.evaluation.subgroups import (
    SubgroupReport,
    age_band,
    subgroup_report,
    value_band,
)

__all__ = ["Accuracy", "CocoMetric", "evaluate_coco", "IoUMetric", "SubgroupMetric",
           "SubgroupReport", "age_band", "subgroup_report", "value_band",
           "PerImageDetectionMetric"]
