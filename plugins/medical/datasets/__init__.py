"""CT datasets: ``DicomSliceDataset`` (unlabeled slices or 2.5D stacks, for
masked pretraining), ``LesionDetectionDataset`` (slices with lesion
boxes, patient-level split) and ``LesionSliceClassificationDataset`` (its
slabs labelled 'lesion' / 'no lesion'), over a cached, PHI-free series index.

Modules: ``series_index`` (the index and its cache), ``base`` (slice
reading, ``LoadCTSlices``, the shared base class), ``slices``, ``lesions``, ``lesion_slices``.
Names are imported on first use, so importing this package is cheap.
"""
from perception._lazy import lazy_exports

_BASE = 'perception_medical.datasets.base'
_INDEX = 'perception_medical.datasets.series_index'
_LESIONS = 'perception_medical.datasets.lesions'

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'DicomSliceDataset': 'perception_medical.datasets.slices',
    'LesionDetectionDataset': _LESIONS,
    'lesion_sections': _LESIONS,
    'LesionSliceClassificationDataset': 'perception_medical.datasets.lesion_slices',
    'CTSliceBase': _BASE,
    'LoadCTSlices': _BASE,
    'read_slices': _BASE,
    'neighbours': _BASE,
    'SeriesIndex': _INDEX,
    'load_series_index': _INDEX,
    'build_series_index': _INDEX,
    'default_index_file': _INDEX,
})
