"""Assigners: which prior learns which ground-truth box."""
from perception.models.task_modules.assigners.assign_result import AssignResult
from perception.models.task_modules.assigners.task_aligned_assigner import TaskAlignedAssigner

__all__ = ['AssignResult', 'TaskAlignedAssigner']
