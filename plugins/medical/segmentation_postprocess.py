"""``PredictedSeg``: the medical plugin's post-processing of a segmentor's
slice predictions, registered in the core's ``POSTPROCESSORS`` so that
``perception infer`` writes a DICOM SEG of a CT series without importing
the plugin (the contract: :mod:`perception.deploy.infer`)::

    if 'segmentation' in PredictedSeg.tasks and \\
            PredictedSeg.applies(frame):         # a segmentor, a CT slice
        post = PredictedSeg(out_dir, class_names)
    post.add(frame, sample)                       # every slice, any order
    summary = post.close()                        # writes, returns a dict

``add`` keeps the slice's ``pred_sem_seg`` (source pixels, as the
Predictor and ``Segmentor.predict`` return it) and the file it was read
from. ``close`` writes per series ``out_dir/seg/<series_uid>_seg.dcm``
(:func:`~perception_medical.segmentation.write_predicted_seg`: its frames
reference the slices they were predicted on; it carries the Patient and
General Study modules DICOM requires and nothing else identifying). A
series whose slices are not single-frame DICOM files gets no SEG: the
reason is logged and listed in the summary's ``skipped``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from perception.errors import UserError
from perception.registry import POSTPROCESSORS

from .lesions.postprocess import CTSlicePostProcessor, source_file

SEG_DIR = 'seg'
logger = logging.getLogger('perception')


def _labels(sample) -> np.ndarray:
    """(H, W) class map of a sample, in the smallest unsigned type."""
    data = sample.pred_sem_seg.data
    data = data.detach().cpu().numpy() if hasattr(data, 'detach') else \
        np.asarray(data)
    data = data.reshape(data.shape[-2:])
    return data.astype(np.uint8 if data.max(initial=0) < 256 else np.uint16)


@POSTPROCESSORS.register_module()
class PredictedSeg(CTSlicePostProcessor):
    """A segmentor's slice predictions of CT series -> one DICOM SEG each.

    Args:
        out_dir: where ``seg/`` is written.
        class_names: the segmentor's label names (label 0 background).
    """

    #: the predictor tasks it takes (:data:`perception.deploy.tasks.TASKS`)
    tasks = ('segmentation', )

    def __init__(self, out_dir: Path | str, class_names: Sequence[str],
                 **options) -> None:
        if options:
            raise TypeError(f'PredictedSeg: unknown option(s) '
                            f'{sorted(options)}; it takes none')
        self.out_dir = Path(out_dir) / SEG_DIR
        self.class_names = list(class_names)
        self._series: dict[str, dict] = {}

    def add(self, frame, sample) -> None:
        """Take one slice's predicted class map (source pixels)."""
        uid = str(frame.meta['series_uid'])
        entry = self._series.setdefault(uid, dict(labels={}, files={}))
        k = int(frame.meta.get('slice_index', frame.index))
        entry['labels'][k] = _labels(sample)
        entry['files'][k] = frame.meta.get('path')

    def close(self) -> dict:
        """Write every series' SEG; returns ``{'series', 'slices',
        'segments', 'files', 'by_series': {uid: {file, slices}},
        'skipped': {uid: why}, 'out_dir'}``."""
        written, by_series, skipped = [], {}, {}
        for uid, entry in sorted(self._series.items()):
            why = self._unusable(entry['files'])
            path = None
            if why is None:
                try:
                    path = self._write(uid, entry)
                except UserError as exc:  # one bad series: the others still
                    why = str(exc)
            if why is not None:
                logger.warning('infer: no DICOM SEG of series %s: %s', uid,
                               why)
                skipped[uid] = why
                continue
            written.append(path)
            by_series[uid] = dict(file=path, slices=len(entry['labels']))
        return dict(series=len(by_series),
                    slices=sum(e['slices'] for e in by_series.values()),
                    segments=max(len(self.class_names) - 1, 0),
                    segment_labels=self.class_names[1:], files=written,
                    by_series=by_series, skipped=skipped,
                    out_dir=str(self.out_dir))

    @staticmethod
    def _unusable(files: dict[int, str | None]) -> str | None:
        """Why slices read from ``files`` cannot be referenced by a SEG
        (None: they can)."""
        import pydicom
        from pydicom.errors import InvalidDicomError
        paths = list(files.values())
        if any(not p for p in paths):
            return 'a slice came without its source file'
        if any(source_file(p) != p for p in paths):
            return ('the slices are frames of a multi-frame file; a SEG '
                    'here references single-frame slices')
        if len(set(paths)) != len(paths):
            return ('two slices came from one file (a resampled series); a '
                    'SEG references the slices as stored')
        try:
            pydicom.dcmread(paths[0], stop_before_pixels=True)
        except (InvalidDicomError, OSError) as exc:
            return f'{paths[0]} is not a DICOM file ({exc})'
        return None

    def _write(self, uid: str, entry: dict) -> str:
        from .dicom.series import load_series
        from .segmentation import PredictedSegError, write_predicted_seg
        # the series again, from the files the slices were read from (only
        # those: the source already dropped what it did not read)
        order = sorted(entry['files'])
        volume = load_series([entry['files'][k] for k in order], uid,
                             on_problem='warn', min_slices=1)
        where = {os.path.normpath(f): j for j, f in enumerate(volume.files)}
        predictions = {}
        for k in order:
            j = where.get(os.path.normpath(entry['files'][k]))
            if j is None:
                raise PredictedSegError(
                    f"{entry['files'][k]} (slice {k}) is not a slice of "
                    f'series {uid} as load_series stacks it')
            predictions[j] = entry['labels'][k]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return write_predicted_seg(self.out_dir / f'{uid}_seg.dcm',
                                   predictions, volume, self.class_names)
