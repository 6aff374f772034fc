"""Data-sample contract (see :mod:`perception.structures.data_sample`)."""
from perception.structures.data_sample import (
                                               DRIVING_CLASSES,
                                               DataSample,
                                               empty_instances,
                                               make_instances,
)

__all__ = ['DataSample', 'DRIVING_CLASSES', 'make_instances',
           'empty_instances']
