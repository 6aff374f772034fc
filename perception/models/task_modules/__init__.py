"""Task modules of dense heads (in ``TASK_UTILS``): assigners, box coders,
prior generators, and the box overlaps they share with the losses."""
from perception.models.task_modules.assigners import AssignResult, TaskAlignedAssigner
from perception.models.task_modules.coders import DistancePointBBoxCoder
from perception.models.task_modules.iou import bbox_overlaps
from perception.models.task_modules.prior_generators import MlvlPointGenerator

__all__ = ['AssignResult', 'TaskAlignedAssigner', 'DistancePointBBoxCoder',
           'MlvlPointGenerator', 'bbox_overlaps']
