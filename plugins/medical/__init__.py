"""perception_medical: DICOM reading, series geometry, CT datasets, FROC,
windowing presets and de-identification.

Importing the package registers its source (``dicom``), datasets, metric,
subcommands (``deid``, ``synth-ct``) and benchmark (``dicom``).
"""
from perception_medical import bench_dicom  # noqa: F401
from perception_medical.dicom import source  # noqa: F401
from perception_medical.deid.files import DeidCommand, deidentify
from perception_medical.froc import FROCMetric, froc
from perception_medical.datasets.lesions import LesionDetectionDataset
from perception_medical.dicom.reading import DicomReadError, read_dicom
from perception_medical.dicom.series import load_series
from perception_medical.dicom.volume import SeriesError, Volume
from perception_medical.datasets.slices import DicomSliceDataset
from perception_medical.synth.phi import planted_phi
from perception_medical.synth.study import (SynthCtCommand,
                                         write_ct_study)
from perception_medical.windows import (WINDOW_PRESETS, ApplyWindows,
                                        header_windows, window_preset,
                                        window_presets)

__version__ = '0.1.0'
__all__ = [
    'read_dicom', 'DicomReadError', 'load_series', 'Volume', 'SeriesError',
    'deidentify', 'DeidCommand', 'FROCMetric', 'froc',
    'LesionDetectionDataset', 'DicomSliceDataset', 'write_ct_study',
    'planted_phi', 'SynthCtCommand', 'WINDOW_PRESETS', 'ApplyWindows',
    'header_windows', 'window_preset', 'window_presets'
]
