"""Lesion inference: slice detections of a CT series merged into 3D
findings in LPS mm, written as JSON, pictures and a DICOM SR.

Modules: ``findings`` (the merge rule, :func:`merge_detections`),
``predict`` (a detector on every slice / slab of a volume,
:func:`predict_volume`), ``postprocess`` (:class:`LesionFindings`, in the
core's ``POSTPROCESSORS`` for ``perception infer``), ``pictures``, ``sr``
(TID 1500 through highdicom). Names are imported on first use.
"""
from perception._lazy import lazy_exports

_FINDINGS = 'perception_medical.lesions.findings'
_PREDICT = 'perception_medical.lesions.predict'
_SR = 'perception_medical.lesions.sr'

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'Finding': _FINDINGS,
    'SliceDetection': _FINDINGS,
    'merge_detections': _FINDINGS,
    'predict_volume': _PREDICT,
    'iter_predictions': _PREDICT,
    'volume_frames': _PREDICT,
    'LesionFindings': 'perception_medical.lesions.postprocess',
    'write_sr': _SR,
    'read_sr_findings': _SR,
})
