"""DICOM: reading one file (:func:`read_dicom`), the header scan, series
loading into a calibrated :class:`Volume` (:func:`load_series`) and the
``dicom`` frame source (``open_source('path/to/series')``).

Modules: ``reading`` (one file's pixels in modality units; ``read_slice``:
one slice, the reader of the datasets and the source), ``fast_header``
and ``header_scan`` (headers without pixels), ``series`` (picking and
checking the slices), ``series_build`` (reading and stacking them),
``volume`` (result types and problem policies), ``geometry`` (spacing, tilt,
resampling, the affine), ``source`` (the frame source).

Names are imported on first use, so importing this package is cheap.
"""
from perception._lazy import lazy_exports

_READING = 'perception_medical.dicom.reading'
_HEADERS = 'perception_medical.dicom.header_scan'
_VOLUME = 'perception_medical.dicom.volume'
_SOURCE = 'perception_medical.dicom.source'

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'read_dicom': _READING,
    'read_slice': _READING,
    'DicomReadError': _READING,
    'DicomProblemWarning': _READING,
    'open_dicom': _READING,
    'scan_headers': _HEADERS,
    'list_dicom_files': _HEADERS,
    'SliceHeader': _HEADERS,
    'Unreadable': _HEADERS,
    'load_series': 'perception_medical.dicom.series',
    'Volume': _VOLUME,
    'SeriesReport': _VOLUME,
    'SeriesError': _VOLUME,
    'CODES': _VOLUME,
    'POLICIES': _VOLUME,
    'DicomOpener': _SOURCE,
    'DicomSeriesSource': _SOURCE,
    'looks_like_dicom': _SOURCE,
})
