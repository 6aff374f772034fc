"""Synthetic CT studies written as real DICOM (``perception synth-ct OUT``):
an analytic chest phantom with lesions, LUNA16-style annotations, slice
boxes and planted identifying values for de-identification checks.

Modules: ``phantom`` (the chest phantom in LPS mm), ``study``
(:func:`write_ct_study`), ``phi`` (the planted identifying values,
:func:`planted_phi`), ``picture`` (windowed slices through the lesions).
Names are imported on first use, so importing this package is cheap.
"""
from perception._lazy import lazy_exports

_STUDY = 'perception_medical.synth.study'
_PHANTOM = 'perception_medical.synth.phantom'

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'write_ct_study': _STUDY,
    'SynthStudy': _STUDY,
    'planted_phi': 'perception_medical.synth.phi',
    'ChestPhantom': _PHANTOM,
    'Lesion': _PHANTOM,
    'save_study_picture': 'perception_medical.synth.picture',
})
