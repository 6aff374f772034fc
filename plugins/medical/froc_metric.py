"""``FROCMetric``: LUNA16's FROC / CPM as the validation metric of a slice
(2D / 2.5D) lesion detector, overall and by nodule size, with per-scan
records for subgroup reports.

Slice boxes become 3D candidates through the same merge rule as
inference (:func:`~perception_medical.lesions.findings.merge_detections`:
linked boxes on adjacent slices, score = the highest), so ``perception
test`` scores exactly the findings ``perception infer`` writes.

Size rows follow LUNA16's reporting (nodules 3-6, 6-10 and > 10 mm, by the
annotated diameter) plus ``>=6mm`` (the benchmark's target): each row is
the FROC of the lesions in that band, lesions of the other bands being
excluded findings (a candidate on them is neither a hit nor a false
positive), every scan counted.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from perception.data.geometry import pred_boxes_to_source, sample_meta
from perception.registry import METRICS
from perception_medical.annotations import read_annotations
from perception_medical.evaluation import (
    FP_RATES,
    froc,
    match_candidates,
    merge_slice_detections,
    sample_boxes_to_detections,
)

#: (name, low mm inclusive, high mm exclusive)
SIZE_BANDS = (('3-6mm', 3.0, 6.0), ('6-10mm', 6.0, 10.0),
              ('>10mm', 10.0, np.inf), ('>=6mm', 6.0, np.inf))
#: the sensitivities reported per size band (besides its CPM)
BAND_FP_RATES = (1.0, 2.0, 4.0)


def _numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def split_by_size(lesions: dict, low: float, high: float
                  ) -> tuple[dict, dict]:
    """(lesions with low <= diameter < high, the others) per series."""
    inside, outside = {}, {}
    for uid, items in lesions.items():
        for centre, d in items:
            (inside if low <= d < high else outside).setdefault(
                uid, []).append((centre, d))
    return inside, outside


def threshold_at(candidates, lesions, scans, excluded, fp_rate: float
                 ) -> float:
    """The lowest probability at which the FPs per scan stay <= fp_rate
    (the operating point of the per-scan records)."""
    _, false_pos = match_candidates(candidates, lesions, scans, excluded)
    probs = np.sort([p for _, p in false_pos])[::-1]
    allowed = int(np.floor(fp_rate * len(scans)))
    if allowed >= len(probs):
        return -np.inf
    return float(probs[allowed]) + 1e-12  # strictly above the next FP


def per_scan_records(candidates, lesions, scans, excluded, fields: dict,
                     threshold: float) -> list[dict]:
    """One record per scan: its subgroup ``fields`` (bands, no identities),
    ``lesions``, ``hits`` / ``false_positives`` at ``threshold``, the best
    hit score of each lesion (None: missed), the FP scores."""
    best, false_pos = match_candidates(candidates, lesions, scans, excluded)
    out = []
    for uid in sorted(scans):
        scores = [best.get((uid, i)) for i in range(len(lesions.get(uid, [])))]
        fps = sorted((p for u, p in false_pos if u == uid), reverse=True)
        hits = sum(s is not None and s >= threshold for s in scores)
        out.append(dict(series_uid=uid, **dict(fields.get(uid) or {}),
                        lesions=len(scores), hits=int(hits),
                        false_positives=int(sum(p >= threshold for p in fps)),
                        sensitivity=hits / len(scores) if scores else None,
                        lesion_scores=[None if s is None else float(s)
                                       for s in scores],
                        diameters_mm=[float(d) for _, d in
                                      lesions.get(uid, [])],
                        fp_scores=[float(p) for p in fps]))
    return out


@METRICS.register_module()
class FROCMetric(BaseMetric):
    """LUNA16 FROC / CPM of lesion detections as an mmengine metric.

    Each data sample is one slice with ``series_uid``, ``slice_index`` and
    ``affine`` in its meta and ``pred_instances`` (boxes, scores, labels;
    in source pixels when the sample says ``pred_space='source'`` as the
    core Detector's do, else on the pipeline's current image and mapped
    back through ``homography_matrix``). A sample may instead carry
    ``pred_candidates`` = dict(points=(N, 3) LPS mm, scores=(N,)) from a 3D
    detector. Every series seen is a scan, with or without lesions.

    Reports ``sens@F`` for F in ``fp_rates``, ``cpm``, counts, and the same
    per size band (``cpm_3-6mm``, ``sens@1_6-10mm``; sensitivities at 1,
    2 and 4 FPs per scan). After
    ``evaluate``, :attr:`per_scan` holds a record per scan
    (:func:`per_scan_records`, at the threshold of ``operating_fp_rate``
    false positives per scan) with the scan's subgroup fields
    (``manufacturer``, ``model``, ``kvp``, ``slice_thickness_band``,
    ``patient_sex``, ``age_band``: from each sample's ``scan_fields`` or
    the dataset's ``metainfo['scan_fields']``).

    Args:
        ann_file: LUNA16 ``annotations.csv`` (world mm, LPS).
        exclude_file: optional irrelevant findings, same columns
            (diameter -1: 10 mm, as LUNA16's script).
        fp_rates: false positives per scan for the sensitivities.
        merge: 'findings' (the inference merge rule) or 'distance' (the
            older greedy merge within ``merge_mm``).
        iou_thr, max_gap: the findings merge rule.
        merge_mm: distance of the 'distance' merge.
        score_thr: drop slice boxes below this score first.
        size_bands: ``(name, low, high)`` mm rows; () for none.
        operating_fp_rate: FPs per scan of the per-scan records' threshold.
    """

    default_prefix = 'froc'
    #: what ``perception export --fp16 / --int8`` gates on (the core's
    #: ``perception.deploy.gate`` spec): sensitivity at 2 FPs per scan,
    #: absolute, at most 0.02 lost by default, shown by nodule size
    precision_gate = dict(key='sens@2', scale=1.0, unit='',
                          label='sensitivity@2FP/scan',
                          max_drop={'fp16': 0.02, 'int8': 0.02},
                          groups='sens@2_', group_by='size',
                          groups_label='sizes', build={}, digits=3,
                          samples='slices')

    def __init__(self, ann_file: str, exclude_file: str | None = None,
                 fp_rates: Sequence[float] = FP_RATES,
                 merge: str = 'findings', iou_thr: float = 0.3,
                 max_gap: int = 1, merge_mm: float = 5.0,
                 score_thr: float = 0.0, size_bands=SIZE_BANDS,
                 operating_fp_rate: float = 1.0, collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if merge not in ('findings', 'distance'):
            raise ValueError(f"FROCMetric: merge must be 'findings' or "
                             f"'distance', got {merge!r}")
        self.lesions = read_annotations(ann_file)
        # LUNA16's excluded findings may have diameter -1: its script
        # then uses 10 mm
        self.excluded = read_annotations(exclude_file, 10.0) \
            if exclude_file else None
        self.fp_rates, self.merge, self.merge_mm = tuple(fp_rates), merge, \
            merge_mm
        self.iou_thr, self.max_gap = iou_thr, max_gap
        self.score_thr, self.size_bands = score_thr, tuple(size_bands)
        self.operating_fp_rate = operating_fp_rate
        self.per_scan: list[dict] = []

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            uid = str(sample_meta(sample, 'series_uid'))
            record = dict(uid=uid, candidates=[], detections=[], boxes=[],
                          fields=sample_meta(sample, 'scan_fields'))
            cands = sample_meta(sample, 'pred_candidates')
            if cands is not None:
                pts = _numpy(cands['points']).reshape(-1, 3)
                scores = _numpy(cands['scores']).reshape(-1)
                record['candidates'] = [(uid, *p.tolist(), float(s))
                                        for p, s in zip(pts, scores)]
                self.results.append(record)
                continue
            pred = sample_meta(sample, 'pred_instances')
            if pred is not None:
                get = pred.get if isinstance(pred, dict) else \
                    (lambda k: getattr(pred, k, None))
                scores = _numpy(get('scores')).reshape(-1)
                keep = scores >= self.score_thr
                bboxes = _numpy(get('bboxes')).reshape(-1, 4)[keep]
                labels = get('labels')
                labels = np.zeros(len(scores), np.int64) if labels is None \
                    else _numpy(labels).reshape(-1)
                if self.merge == 'distance':
                    record['detections'] = sample_boxes_to_detections(
                        sample, bboxes, scores[keep])
                else:
                    source = pred_boxes_to_source(sample, bboxes)
                    record.update(
                        slice_index=int(sample_meta(sample, 'slice_index')),
                        affine=np.asarray(sample_meta(sample, 'affine'),
                                          np.float64),
                        boxes=[(b.tolist(), float(s), int(lab)) for b, s, lab
                               in zip(source, scores[keep], labels[keep])])
            self.results.append(record)

    def candidates(self, results: list) -> list[tuple]:
        """3D candidates ``(seriesuid, x, y, z, probability)`` of the
        processed results (the merge this metric was built with)."""
        from perception_medical.lesions.findings import (
            SliceDetection,
            merge_detections,
        )
        out = [c for r in results for c in r['candidates']]
        if self.merge == 'distance':
            return out + merge_slice_detections(
                [d for r in results for d in r['detections']], self.merge_mm)
        series: dict[str, dict] = {}
        for r in results:
            if 'affine' not in r:
                continue
            entry = series.setdefault(r['uid'], dict(affine=r['affine'],
                                                     dets=[]))
            entry['dets'] += [SliceDetection(r['slice_index'], np.asarray(b),
                                             s, lab) for b, s, lab in r['boxes']]
        for uid, entry in sorted(series.items()):
            out += [(uid, *f.center_lps, f.score) for f in merge_detections(
                entry['dets'], entry['affine'], uid, (),
                self.iou_thr, self.max_gap)]
        return out

    def compute_metrics(self, results: list) -> dict:
        scans = sorted({r['uid'] for r in results})
        candidates = self.candidates(results)
        res = froc(candidates, self.lesions, scans, self.excluded,
                   self.fp_rates)
        metrics = {f'sens@{f:g}': float(s)
                   for f, s in zip(res.fp_rates, res.sensitivities)}
        metrics.update(cpm=res.cpm, lesions=res.n_lesions,
                       detected=res.n_detected, scans=res.n_scans,
                       false_positives=res.n_false_positives)
        for name, low, high in self.size_bands:
            inside, outside = split_by_size(self.lesions, low, high)
            excluded = {uid: list((self.excluded or {}).get(uid, [])) +
                        outside.get(uid, []) for uid in scans}
            band = froc(candidates, inside, scans, excluded, self.fp_rates)
            metrics.update({f'sens@{f:g}_{name}': float(s) for f, s in
                            zip(band.fp_rates, band.sensitivities)
                            if f in BAND_FP_RATES})
            metrics.update({f'cpm_{name}': band.cpm,
                            f'lesions_{name}': band.n_lesions,
                            f'detected_{name}': band.n_detected})
        fields = dict((self.dataset_meta or {}).get('scan_fields') or {})
        fields.update({r['uid']: r['fields'] for r in results if r['fields']})
        threshold = threshold_at(candidates, self.lesions, scans,
                                 self.excluded, self.operating_fp_rate)
        self.per_scan = per_scan_records(candidates, self.lesions, scans,
                                         self.excluded, fields, threshold)
        return metrics
