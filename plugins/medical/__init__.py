"""perception_medical: DICOM reading, series geometry, CT datasets, FROC,
windowing presets and de-identification.

Parts: ``dicom`` (reading, header scan, series, geometry, the ``dicom``
source, DICOM SEG read and write), ``datasets`` (``DicomSliceDataset``,
``LesionDetectionDataset``, ``CTOrganSegDataset``),
``deid`` (``perception deid``), ``synth`` (``perception synth-ct``),
``evaluation`` (LUNA16 FROC), ``froc_metric`` (``FROCMetric``),
``lesions`` (per-series inference, findings JSON / pictures / SR,
``LesionFindings``), ``segmentation`` (predicted masks as DICOM SEG),
``segmentation_postprocess`` (``PredictedSeg``: infer's SEG), ``windows`` (window presets,
``ApplyWindows``), ``annotations`` (annotation CSVs), ``benchmarks``
(``perception benchmark dicom``), ``commands`` (the subcommands).

Importing the package is cheap (no torch, no pydicom): the public names below
are imported on first use. Plugin discovery calls :func:`register`, which
imports the modules that register the source, datasets, transforms, metric,
subcommands and benchmark; ``perception --help`` imports only
``COMMAND_MODULES``.
"""
from perception._lazy import import_all, lazy_exports

__version__ = '0.1.0'

#: modules that register the subcommands (cheap to import: no torch)
COMMAND_MODULES = ('perception_medical.commands', )

#: modules whose import registers classes in the core's registries
REGISTERING_MODULES = (
    'perception_medical.dicom.source',          # SOURCES: dicom
    'perception_medical.datasets.base',         # TRANSFORMS: LoadCTSlices
    'perception_medical.datasets.slices',       # DATASETS
    'perception_medical.datasets.lesions',      # DATASETS
    'perception_medical.datasets.lesion_slices',  # DATASETS
    'perception_medical.datasets.organs',       # DATASETS, TRANSFORMS: LoadCTSegMap
    'perception_medical.datasets.sampler',      # DATA_SAMPLERS
    'perception_medical.deid.private_args',     # privacy guard: path args
    'perception_medical.evaluation',            # FROC functions
    'perception_medical.froc_metric',           # METRICS: FROCMetric
    'perception_medical.lesions.postprocess',   # POSTPROCESSORS: LesionFindings
    'perception_medical.segmentation_postprocess',  # POSTPROCESSORS: PredictedSeg
    'perception_medical.windows',               # TRANSFORMS: ApplyWindows
    'perception_medical.benchmarks',            # BENCHMARKS: dicom
    'perception_medical.demo',                  # DEMOS: medical
) + COMMAND_MODULES

_WINDOWS = 'perception_medical.windows'
_EVALUATION = 'perception_medical.evaluation'
_COMMANDS = 'perception_medical.commands'

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'read_dicom': 'perception_medical.dicom.reading',
    'DicomReadError': 'perception_medical.dicom.reading',
    'load_series': 'perception_medical.dicom.series',
    'Volume': 'perception_medical.dicom.volume',
    'SeriesError': 'perception_medical.dicom.volume',
    'deidentify': 'perception_medical.deid.files',
    'DeidCommand': _COMMANDS,
    'FROCMetric': 'perception_medical.froc_metric',
    'froc': _EVALUATION,
    'LesionDetectionDataset': 'perception_medical.datasets.lesions',
    'DicomSliceDataset': 'perception_medical.datasets.slices',
    'CTOrganSegDataset': 'perception_medical.datasets.organs',
    'read_seg': 'perception_medical.dicom.seg_read',
    'SeriesGrid': 'perception_medical.dicom.seg_read',
    'SegAlignmentError': 'perception_medical.dicom.seg_read',
    'write_seg': 'perception_medical.dicom.seg_write',
    'write_predicted_seg': 'perception_medical.segmentation',
    'LesionBalancedSampler': 'perception_medical.datasets.sampler',
    'read_metaimage': 'perception_medical.dicom.metaimage',
    'LesionFindings': 'perception_medical.lesions.postprocess',
    'predict_volume': 'perception_medical.lesions.predict',
    'merge_detections': 'perception_medical.lesions.findings',
    'write_ct_study': 'perception_medical.synth.study',
    'planted_phi': 'perception_medical.synth.phi',
    'SynthCtCommand': _COMMANDS,
    'WINDOW_PRESETS': _WINDOWS,
    'ApplyWindows': _WINDOWS,
    'header_windows': _WINDOWS,
    'window_preset': _WINDOWS,
    'window_presets': _WINDOWS,
})


def register() -> None:
    """Register the plugin's classes (called by plugin discovery)."""
    import_all(REGISTERING_MODULES)
