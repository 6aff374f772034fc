"""Predicted CT masks written back as DICOM SEG, aligned to the source series:
:func:`write_predicted_seg` takes a segmentor's ``pred_sem_seg`` per slice
(source pixels, as ``Segmentor.predict`` returns them) and the series, and
writes one SEG whose frames reference the slices they were predicted on
(:func:`~perception_medical.dicom.seg_write.write_seg`;
:func:`~perception_medical.dicom.seg_read.read_seg` reads it back onto the
series). Like the lesion SR it carries the Patient and General Study
modules DICOM requires and nothing else identifying.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from perception.errors import UserError


class PredictedSegError(UserError, ValueError):
    """Predictions that do not fit their series."""


def _by_slice(predictions, series_uid: str, n: int) -> dict[int, np.ndarray]:
    """slice index -> (H, W) labels, from DataSamples or a mapping."""
    if isinstance(predictions, Mapping):
        items = [(int(k), np.asarray(v)) for k, v in predictions.items()]
    else:
        items = []
        for sample in predictions:
            uid = sample.metainfo.get('series_uid')
            if uid is not None and str(uid) != series_uid:
                raise PredictedSegError(
                    f'a prediction of series {uid} (slice '
                    f"{sample.metainfo.get('slice_index')}) given with series "
                    f'{series_uid}; write one SEG per series')
            if 'slice_index' not in sample.metainfo:
                raise PredictedSegError(
                    'a prediction without slice_index in its metainfo; '
                    "keep 'slice_index' in PackInputs' meta_keys")
            data = sample.pred_sem_seg.data
            data = data.cpu().numpy() if hasattr(data, 'cpu') else np.asarray(data)
            items.append((int(sample.metainfo['slice_index']), data.reshape(
                data.shape[-2:])))
    out: dict[int, np.ndarray] = {}
    for k, labels in items:
        if not 0 <= k < n:
            raise PredictedSegError(f'slice_index {k} is outside series '
                                    f'{series_uid} (0..{n - 1})')
        if k in out:
            raise PredictedSegError(f'two predictions of slice {k} of series '
                                    f'{series_uid}')
        out[k] = labels
    if not out:
        raise PredictedSegError(f'no prediction to write for series {series_uid}')
    return out


def write_predicted_seg(path: str | os.PathLike, predictions, volume,
                        class_names: Sequence[str],
                        algorithm: str = 'perception segmentor',
                        series_number: int = 992) -> str:
    """Write a segmentor's predictions on the slices of one series as SEG.

    Args:
        path: the ``.dcm`` file to write.
        predictions: DataSamples with ``pred_sem_seg`` (1, H, W) in source
            pixels and ``slice_index`` (and ``series_uid``) in their
            metainfo, or a mapping slice index -> (H, W) labels. Slices
            without a prediction are left out of the SEG.
        volume: the source :class:`~perception_medical.Volume` (from
            ``load_series``; single-frame DICOM files).
        class_names: name of each label; label 0 is background (not
            written), the others become segments 1..N.
        algorithm: the name recorded as the segments' algorithm.
        series_number: the SEG series' number.

    Returns:
        the path written.
    """
    import pydicom

    from perception_medical.dicom.seg_write import write_seg
    series_uid = str(volume.meta['series_uid'])
    if any(f.endswith(']') for f in volume.files):
        raise PredictedSegError(
            f'series {series_uid} is a multi-frame file; write_predicted_seg '
            'references single-frame slices')
    found = _by_slice(predictions, series_uid, len(volume.files))
    order = sorted(found)
    sources = [pydicom.dcmread(volume.files[k], stop_before_pixels=True)
               for k in order]
    labels = np.stack([found[k] for k in order])
    return write_seg(path, labels, class_names, sources,
                     description='perception predicted segmentation',
                     algorithm=algorithm, series_number=series_number)
