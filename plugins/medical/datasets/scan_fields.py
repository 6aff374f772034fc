"""Per-scan metadata for subgroup reports, taken from headers at index time
and reduced so that no identity is carried: scanner (``Manufacturer``,
``ManufacturerModelName``, ``KVP``), a slice thickness band, ``PatientSex``
and an age band (from ``PatientAge``, or from the birth and study dates,
which are used here and never stored). Nothing else from the header is
kept; these are what the series index stores per series and what the
lesion dataset and :class:`~perception_medical.froc_metric.FROCMetric`
hand on.
"""
from __future__ import annotations

import datetime
from typing import Any

#: the per-scan fields, in report order
SCAN_FIELDS = ('manufacturer', 'model', 'kvp', 'slice_thickness_band',
               'patient_sex', 'age_band')
#: header tags read (the dates only to compute the age band)
SCAN_TAGS = ['Manufacturer', 'ManufacturerModelName', 'KVP',
             'SliceThickness', 'PatientSex', 'PatientAge',
             'PatientBirthDate', 'StudyDate']
UNKNOWN = 'unknown'


def thickness_band(mm: float | None) -> str:
    """'<=1.5 mm', '1.5-3 mm', '3-5 mm', '>5 mm' (LUNA16 keeps <= 2.5 mm
    scans; screening CT is 1-2.5 mm, routine chest CT 3-5 mm)."""
    if mm is None or mm <= 0:
        return UNKNOWN
    for limit, band in ((1.5, '<=1.5 mm'), (3.0, '1.5-3 mm'),
                        (5.0, '3-5 mm')):
        if mm <= limit + 1e-6:
            return band
    return '>5 mm'


def age_band(years: float | None, width: int = 10) -> str:
    """Decade band ('60-69'); 90 and over as '90+' (ages above 89 are
    identifying under HIPAA Safe Harbor)."""
    if years is None or years < 0:
        return UNKNOWN
    if years >= 90:
        return '90+'
    low = int(years // width) * width
    return f'{low}-{low + width - 1}'


def _age_years(age: str, birth: str, study: str) -> float | None:
    age = (age or '').strip().upper()
    if len(age) == 4 and age[:3].isdigit() and age[3] in 'DWMY':
        return int(age[:3]) / {'D': 365.25, 'W': 52.18, 'M': 12.0,
                               'Y': 1.0}[age[3]]
    try:
        b = datetime.datetime.strptime(birth.strip()[:8], '%Y%m%d').date()
        s = datetime.datetime.strptime(study.strip()[:8], '%Y%m%d').date()
    except (ValueError, AttributeError):
        return None
    return (s - b).days / 365.25


def _text(ds: Any, key: str) -> str:
    value = ds.get(key, '') if hasattr(ds, 'get') else ''
    value = str(value or '').strip()
    return value or UNKNOWN


def scan_fields(ds: Any) -> dict[str, str]:
    """The :data:`SCAN_FIELDS` of a scan from a pydicom dataset (or a dict
    of header values), as strings ('unknown' where absent)."""
    try:
        thickness = float(ds.get('SliceThickness', '') or 'nan')
    except (TypeError, ValueError):
        thickness = None
    if thickness != thickness:  # NaN
        thickness = None
    try:
        kvp = f"{float(ds.get('KVP', '') or 'nan'):g}"
        kvp = UNKNOWN if kvp == 'nan' else kvp
    except (TypeError, ValueError):
        kvp = UNKNOWN
    sex = _text(ds, 'PatientSex').upper()
    return dict(
        manufacturer=_text(ds, 'Manufacturer'),
        model=_text(ds, 'ManufacturerModelName'),
        kvp=kvp,
        slice_thickness_band=thickness_band(thickness),
        patient_sex=sex if sex in ('M', 'F', 'O') else UNKNOWN,
        age_band=age_band(_age_years(str(ds.get('PatientAge', '') or ''),
                                     str(ds.get('PatientBirthDate', '') or ''),
                                     str(ds.get('StudyDate', '') or ''))))


def unknown_fields(**known: str) -> dict[str, str]:
    """Fields of a scan without a DICOM header (MetaImage): 'unknown'
    except ``known`` (e.g. the thickness band from the spacing)."""
    out = {k: UNKNOWN for k in SCAN_FIELDS}
    out.update(known)
    return out
