"""De-identification of DICOM files: the PS3.15 Basic Application Level
Confidentiality Profile with the Retain Longitudinal Temporal Information
with Modified Dates Option (``perception deid IN OUT``).

Modules: ``profile`` (Table E.1-1 as package data, resolved to actions),
``deidentifier`` (one pydicom Dataset in place), ``files`` (files and
folders, the report), ``private_args`` (which config arguments of the CT
datasets identify patients, for the core's privacy guard).
Names are imported on first use, so importing this package is cheap.
"""
from perception._lazy import lazy_exports

_FILES = 'perception_medical.deid.files'
_PROFILE = 'perception_medical.deid.profile'

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'deidentify': _FILES,
    'read_key': _FILES,
    'DeidError': _FILES,
    'Deidentifier': 'perception_medical.deid.deidentifier',
    'Changes': 'perception_medical.deid.deidentifier',
    'load_profile': _PROFILE,
    'Profile': _PROFILE,
    'EDITION': _PROFILE,
})
