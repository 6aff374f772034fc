"""perception_medical: DICOM reading, series geometry, CT datasets, FROC,
windowing presets and de-identification."""
from perception.commands import NotAvailableCommand
from perception.registry import COMMANDS

__version__ = '0.1.0'

from .reading import DicomReadError, read_dicom  # noqa: E402,F401
from .series import SeriesError, Volume, load_series  # noqa: E402,F401
from . import bench_dicom, dicom_source  # noqa: E402,F401  (registers `dicom` source + benchmark)

from .deid import DeidCommand, deidentify  # noqa: E402,F401  (registers `deid`)

from .synth_ct import SynthCtCommand, planted_phi, write_ct_study  # noqa: E402,F401  (registers `synth-ct`)
from .windows import (ApplyWindows, WINDOW_PRESETS, header_windows,  # noqa: E402,F401
                      window_preset, window_presets)
from .slices import DicomSliceDataset  # noqa: E402,F401  (registers the dataset)
from .lesions import LesionDetectionDataset  # noqa: E402,F401  (registers the dataset)
from .froc import FROCMetric, froc  # noqa: E402,F401  (registers the metric)
