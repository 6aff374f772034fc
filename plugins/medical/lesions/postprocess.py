"""``LesionFindings``: the medical plugin's post-processing of slice
detections, registered in the core's ``POSTPROCESSORS`` so that
``perception infer`` uses it on DICOM series without importing the plugin.

The contract ``perception infer`` calls (:mod:`perception.deploy.infer`;
the segmentor's twin is :class:`~perception_medical.segmentation_postprocess.PredictedSeg`)::

    if 'detection' in LesionFindings.tasks and \
            LesionFindings.applies(frame):       # a detector, a CT slice
        post = LesionFindings(out_dir, class_names, **options)
    post.add(frame, sample)                       # every slice, any order
    summary = post.close()                        # writes, returns a dict

``add`` takes the frame as the source gave it (``meta``: ``series_uid``,
``slice_index``, ``affine``, ``path``) and the model's DataSample
(``pred_instances`` boxes xyxy in source pixels, scores, labels). ``close``
merges each series' detections into 3D findings
(:mod:`~perception_medical.lesions.findings` states the rule) and writes,
per series, into ``out_dir/findings/``:

* ``<series_uid>.json``: ``{series_uid, findings: [{center_lps,
  diameter_mm, score, slice_range, series_uid, slices}], merge: rule}``,
  world coordinates in LPS mm, no patient data;
* ``<series_uid>_finding<N>.png``: the finding's strongest slice, lung
  window, its box drawn (core visualization), no patient data;
* ``<series_uid>_sr.dcm``: the TID 1500 SR
  (:mod:`~perception_medical.lesions.sr`) when the slices came from DICOM
  files; it carries the source's patient and study modules by design.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from perception.registry import POSTPROCESSORS

from .findings import SliceDetection, merge_detections

FINDINGS_DIR = 'findings'
#: the window the pictures use (lung: nodules), (center, width) HU
PICTURE_WINDOW = (-600.0, 1500.0)
_FRAME_SUFFIX = re.compile(r' \[(frame|slice) \d+\]$')


def source_file(path: str | None) -> str | None:
    """The file behind a frame's ``path`` ('f.dcm [frame 3]' -> 'f.dcm')."""
    return _FRAME_SUFFIX.sub('', path) if path else None


class CTSlicePostProcessor:
    """Base of the CT post-processors: they take CT slices with their
    geometry."""

    @classmethod
    def applies(cls, frame) -> bool:
        """Whether frames like ``frame`` are CT slices (meta has
        ``series_uid`` and ``affine``)."""
        meta = getattr(frame, 'meta', None) or {}
        return meta.get('series_uid') is not None and \
            meta.get('affine') is not None


def _numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def sample_detections(frame, sample, min_score: float = 0.0
                      ) -> list[SliceDetection]:
    """A slice's predicted boxes (source pixels) as :class:`SliceDetection`."""
    from perception.data.geometry import pred_boxes_to_source
    pred = sample.pred_instances
    scores = _numpy(pred.scores).reshape(-1)
    boxes = pred_boxes_to_source(sample, pred.bboxes).reshape(-1, 4)
    labels = _numpy(pred.labels).reshape(-1) if 'labels' in pred else \
        np.zeros(len(scores), np.int64)
    k = int(frame.meta.get('slice_index', frame.index))
    return [SliceDetection(k, np.asarray(b, np.float64), float(s), int(lab),
                           frame.meta.get('sop_instance_uid'))
            for b, s, lab in zip(boxes, scores, labels) if s >= min_score]


@POSTPROCESSORS.register_module()
class LesionFindings(CTSlicePostProcessor):
    """Slice detections of CT series -> 3D findings, JSON, pictures, SR.

    Args:
        out_dir: where ``findings/`` is written.
        class_names: the detector's label names.
        min_score: slice boxes below it are dropped before merging.
        iou_thr, max_gap: the merge rule's overlap and bridged slices.
        pictures: write a picture per finding.
        sr: write the DICOM SR (DICOM sources only).
        max_pictures: per series.
    """

    #: the predictor tasks it takes (:data:`perception.deploy.tasks.TASKS`)
    tasks = ('detection', )

    def __init__(self, out_dir: Path | str, class_names: Sequence[str],
                 min_score: float = 0.3, iou_thr: float = 0.3,
                 max_gap: int = 1, pictures: bool = True, sr: bool = True,
                 max_pictures: int = 10, **options) -> None:
        if options:
            raise TypeError(f'LesionFindings: unknown option(s) '
                            f'{sorted(options)}; use min_score, iou_thr, '
                            'max_gap, pictures, sr, max_pictures')
        self.out_dir = Path(out_dir) / FINDINGS_DIR
        self.class_names = list(class_names) or ['lesion']
        self.min_score, self.iou_thr, self.max_gap = min_score, iou_thr, max_gap
        self.pictures, self.sr, self.max_pictures = pictures, sr, max_pictures
        self._series: dict[str, dict] = {}

    def add(self, frame, sample) -> None:
        """Take one slice's predictions (boxes in source pixels)."""
        uid = str(frame.meta['series_uid'])
        entry = self._series.setdefault(uid, dict(
            affine=np.asarray(frame.meta['affine'], np.float64), dets=[],
            images={}, files={}))
        k = int(frame.meta.get('slice_index', frame.index))
        dets = sample_detections(frame, sample, self.min_score)
        entry['dets'] += dets
        path = source_file(frame.meta.get('path'))
        if path:
            entry['files'][k] = path
        if dets and self.pictures:  # only slices that may hold a finding
            # kept for display only: whole HU as int16 (half of float32)
            entry['images'][k] = np.clip(np.rint(np.asarray(
                frame.image, np.float32)), -32768, 32767).astype(np.int16)

    def close(self) -> dict:
        """Merge, write every series' outputs; returns ``{'series',
        'findings', 'files', 'by_series': {uid: n}}``."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        written, by_series = [], {}
        for uid, entry in sorted(self._series.items()):
            findings = [f.to_dict() for f in merge_detections(
                entry['dets'], entry['affine'], uid, self.class_names,
                self.iou_thr, self.max_gap)]
            by_series[uid] = len(findings)
            written.append(self._write_json(uid, findings))
            if self.pictures:
                written += self._write_pictures(uid, findings, entry)
            if self.sr and findings:
                sr = self._write_sr(uid, findings, entry)
                if sr:
                    written.append(sr)
        return dict(series=len(by_series), findings=sum(by_series.values()),
                    by_series=by_series, out_dir=str(self.out_dir),
                    files=[str(p) for p in written])

    # -- outputs ---------------------------------------------------------
    def _write_json(self, uid: str, findings: list[dict]) -> Path:
        path = self.out_dir / f'{uid}.json'
        path.write_text(json.dumps(dict(
            series_uid=uid, coordinates='LPS mm', findings=findings,
            merge=dict(rule='linked boxes on slices at most max_gap + 1 '
                       'apart (IoU >= iou_thr or centre inside), connected '
                       'groups; score max, centre score x area weighted, '
                       'diameter largest section',
                       iou_thr=self.iou_thr, max_gap=self.max_gap,
                       min_score=self.min_score)), indent=1))
        return path

    def _write_pictures(self, uid: str, findings: list[dict],
                        entry: dict) -> list[Path]:
        from .pictures import finding_picture
        out = []
        for i, f in enumerate(findings[:self.max_pictures]):
            best = max(f['slices'], key=lambda s: s['score'])
            image = entry['images'].get(best['slice_index'])
            if image is None:
                continue
            path = self.out_dir / f'{uid}_finding{i + 1}.png'
            finding_picture(image, f, best, PICTURE_WINDOW).save(path)
            out.append(path)
        return out

    def _write_sr(self, uid: str, findings: list[dict],
                  entry: dict) -> Path | None:
        import pydicom
        from pydicom.errors import InvalidDicomError

        from .sr import write_sr
        wanted = {s['slice_index'] for f in findings for s in f['slices']}
        sources = {}
        for k in sorted(wanted):
            path = entry['files'].get(k)
            if not path or not os.path.isfile(path):
                continue
            try:
                sources[k] = pydicom.dcmread(path, stop_before_pixels=True)
            except (InvalidDicomError, OSError):
                return None  # not DICOM (MetaImage...): no SR
        if not sources:
            return None
        path = self.out_dir / f'{uid}_sr.dcm'
        write_sr(path, findings, entry['affine'], sources)
        return path
