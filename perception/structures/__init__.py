"""Data-sample contract (see :mod:`perception.structures.data_sample`)."""
from perception.structures.data_sample import (
                                               DRIVING_CLASSES,
                                               SEG_IGNORE_INDEX,
                                               DataSample,
                                               empty_instances,
                                               make_instances,
                                               make_sem_seg,
)

__all__ = ['DataSample', 'DRIVING_CLASSES', 'make_instances',
           'empty_instances', 'make_sem_seg', 'SEG_IGNORE_INDEX']
