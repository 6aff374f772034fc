"""FROC and CPM following the LUNA16 evaluation rules.

Setio et al., "Validation, comparison, and combination of algorithms for
automatic detection of pulmonary nodules in computed tomography images: the
LUNA16 challenge", Medical Image Analysis 2017.

* Candidates are ``(seriesuid, x, y, z, probability)`` in LPS mm.
* A candidate hits a lesion when its centre lies within the lesion's
  radius (``diameter_mm / 2``) of the lesion centre.
* Several hits on one lesion count once (with the highest probability) and
  are not false positives; a candidate hitting two lesions counts for both.
* Candidates hitting an excluded finding (LUNA16's irrelevant findings) are
  neither true nor false positives.
* Sensitivity is read off the FROC curve (one point per distinct
  probability threshold, straight lines between them, as LUNA16's script
  does with ``np.interp``) at 1/8, 1/4, 1/2, 1, 2, 4, 8 false positives per
  scan; CPM is their mean.

Detectors working on slices give boxes; :func:`merge_slice_detections`
turns them into 3D candidates first.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from perception.data.geometry import (
    points_to_lps,
    pred_boxes_to_source,
    sample_meta,
    source_pixel_spacing,
)
from perception_medical.annotations import csv_number, csv_text, read_csv_rows

FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
Candidate = tuple  # (seriesuid, x, y, z, probability)


@dataclass
class FrocResult:
    """Sensitivities at ``fp_rates``, CPM and the curve they come from."""

    fp_rates: tuple
    sensitivities: np.ndarray
    cpm: float
    curve_fps: np.ndarray = field(repr=False)
    curve_sens: np.ndarray = field(repr=False)
    n_scans: int = 0
    n_lesions: int = 0
    n_detected: int = 0
    n_false_positives: int = 0


def read_candidates(path: str) -> list[Candidate]:
    """LUNA16 candidates CSV (``seriesuid,coordX,coordY,coordZ,probability``)."""
    rows = read_csv_rows(path, ('seriesuid', 'coordX', 'coordY', 'coordZ',
                                'probability'))
    return [(csv_text(path, line, row, 'seriesuid',
                      "series' SeriesInstanceUID"),
             *[csv_number(path, line, row, k)
               for k in ('coordX', 'coordY', 'coordZ', 'probability')])
            for line, row in rows]


def froc(candidates: Iterable[Candidate],
         lesions: dict[str, list[tuple]], scan_uids: Iterable[str],
         excluded: dict[str, list[tuple]] | None = None,
         fp_rates: Sequence[float] = FP_RATES) -> FrocResult:
    """FROC of ``candidates`` against ``lesions`` over ``scan_uids``.

    Args:
        candidates: ``(seriesuid, x, y, z, probability)``, LPS mm.
        lesions: ``{seriesuid: [(xyz, diameter_mm), ...]}`` (as
            :func:`~perception_medical.annotations.read_annotations` returns).
        scan_uids: every scan evaluated, with or without lesions or
            candidates (false positives are counted per scan).
        excluded: findings that neither reward nor penalise, same form.
        fp_rates: false positives per scan to read sensitivity at.

    Returns:
        :class:`FrocResult`. With no lesions the sensitivities and CPM are
        NaN (undefined), never a silent 0 or 1.
    """
    scans = sorted(set(scan_uids))
    if not scans:
        raise ValueError('froc: no scans to evaluate')
    best, false_pos = match_candidates(candidates, lesions, scans, excluded)
    false_pos = [p for _, p in false_pos]
    n_lesions = sum(len(lesions.get(uid, [])) for uid in scans)
    probs = np.array(list(best.values()) + false_pos, float)
    is_tp = np.r_[np.ones(len(best)), np.zeros(len(false_pos))]
    order = np.argsort(-probs, kind='stable')
    probs, is_tp = probs[order], is_tp[order]
    # one curve point per distinct threshold (the last of each tie group)
    last = np.r_[np.flatnonzero(np.diff(probs) != 0), len(probs) - 1] \
        if len(probs) else np.zeros(0, int)
    tps, fps = np.cumsum(is_tp)[last], np.cumsum(1 - is_tp)[last]
    curve_fps = np.r_[0.0, fps / len(scans)]
    with np.errstate(invalid='ignore', divide='ignore'):
        curve_sens = np.r_[0.0, tps] / n_lesions if n_lesions else \
            np.full(len(curve_fps), np.nan)
    sens = np.interp(np.asarray(fp_rates, float), curve_fps, curve_sens)
    return FrocResult(tuple(fp_rates), sens, float(np.mean(sens)),
                      curve_fps, curve_sens, len(scans), n_lesions,
                      len(best), len(false_pos))


def match_candidates(candidates: Iterable[Candidate],
                     lesions: dict[str, list[tuple]], scan_uids: Iterable[str],
                     excluded: dict[str, list[tuple]] | None = None
                     ) -> tuple[dict[tuple[str, int], float],
                                list[tuple[str, float]]]:
    """LUNA16's matching: ``({(seriesuid, lesion index): best probability
    of a hit}, [(seriesuid, probability) of each false positive])``
    (see the module docstring for the rules)."""
    scan_set = set(scan_uids)
    best: dict[tuple[str, int], float] = {}  # lesion -> best probability
    false_pos: list[tuple[str, float]] = []
    for uid, x, y, z, prob in candidates:
        if uid not in scan_set:
            raise ValueError(f'froc: candidate for series {uid}, which is '
                             'not among the evaluated scans; add it to '
                             'scan_uids or drop the candidate')
        point = np.array([x, y, z], float)
        hit = False
        for i, (centre, diameter) in enumerate(lesions.get(uid, [])):
            if np.linalg.norm(point - centre) < diameter / 2.0:
                hit = True
                best[(uid, i)] = max(best.get((uid, i), -np.inf), prob)
        if not hit and not any(
                np.linalg.norm(point - c) < d / 2.0
                for c, d in (excluded or {}).get(uid, [])):
            false_pos.append((uid, float(prob)))
    return best, false_pos


def merge_slice_detections(detections: Iterable[tuple],
                           merge_mm: float = 5.0) -> list[Candidate]:
    """Merge per-slice detections into 3D candidates.

    Args:
        detections: ``(seriesuid, centre_lps (3,), probability, radius_mm)``
            per slice box (see :func:`slice_boxes_to_detections`).
        merge_mm: detections closer than ``max(merge_mm, radius of the
            strongest)`` to the strongest remaining one join its candidate.

    Returns:
        ``(seriesuid, x, y, z, probability)``: greedy from the highest
        probability; the candidate is the probability-weighted mean centre
        and the highest probability of its members.
    """
    by_series: dict[str, list] = {}
    for uid, centre, prob, radius in detections:
        by_series.setdefault(uid, []).append(
            (np.asarray(centre, float), float(prob), float(radius)))
    out = []
    for uid, dets in sorted(by_series.items()):
        dets.sort(key=lambda d: -d[1])
        centres = np.array([d[0] for d in dets])
        free = np.ones(len(dets), bool)
        for i, (centre, prob, radius) in enumerate(dets):
            if not free[i]:
                continue
            dist = np.linalg.norm(centres - centre, axis=1)
            members = free & (dist <= max(merge_mm, radius))
            free &= ~members
            weights = np.array([dets[j][1] for j in np.flatnonzero(members)])
            mean = (centres[members] * np.maximum(weights, 1e-12)[:, None]
                    ).sum(0) / np.maximum(weights, 1e-12).sum()
            out.append((uid, *mean.tolist(), prob))
    return out


def sample_boxes_to_detections(sample, bboxes, scores) -> list[tuple]:
    """xyxy pixel-edge boxes predicted on a CT slice sample's current
    (model input) image -> ``(seriesuid, centre LPS, probability, radius
    mm)``.

    The boxes are mapped back through what the pipeline did
    (``homography_matrix``: resize, crop, flip, pad) and then the slice's
    volume ``affine`` at ``slice_index``, with
    :mod:`perception.data.geometry` (the one back-mapping): centres by
    :func:`~perception.data.geometry.points_to_lps`, the radius is half the
    longer side of the box on the source slice in mm.

    Args:
        sample: DataSample, its ``to_dict()`` or a results dict with
            ``series_uid``, ``slice_index``, ``affine`` and (unless the
            pipeline left the geometry alone) ``homography_matrix``.
        bboxes: (N, 4) on the current image, or on the source slice when
            the sample says ``pred_space='source'`` (the core Detector's
            predictions).
        scores: (N,).
    """
    boxes = _numpy(bboxes).astype(np.float64).reshape(-1, 4)
    scores = _numpy(scores).astype(np.float64).reshape(-1)
    if not len(boxes):
        return []
    uid = str(sample_meta(sample, 'series_uid'))
    # a Detector's predictions are in source pixels already (pred_space)
    source = pred_boxes_to_source(sample, boxes).astype(np.float64)
    centres = points_to_lps(sample, np.stack(
        [(source[:, 0] + source[:, 2]) / 2, (source[:, 1] + source[:, 3]) / 2],
        axis=1), space='source')
    sy, sx = source_pixel_spacing(sample)
    radii = np.maximum((source[:, 2] - source[:, 0]) * sx,
                       (source[:, 3] - source[:, 1]) * sy) / 2
    return [(uid, centre, float(score), float(radius))
            for centre, score, radius in zip(centres, scores, radii)]


def slice_boxes_to_detections(series_uid: str, slice_index: int,
                              affine: np.ndarray, bboxes: np.ndarray,
                              scores: np.ndarray,
                              homography_matrix: np.ndarray | None = None
                              ) -> list[tuple]:
    """Per-slice xyxy pixel-edge boxes -> ``(seriesuid, centre LPS,
    probability, radius mm)``: :func:`sample_boxes_to_detections` for a
    slice given by its fields (``homography_matrix``: what the pipeline
    did to the slice; None: boxes are in source pixels)."""
    sample = dict(series_uid=series_uid, slice_index=slice_index,
                  affine=np.asarray(affine, np.float64))
    if homography_matrix is not None:
        sample['homography_matrix'] = _numpy(homography_matrix)
    return sample_boxes_to_detections(sample, bboxes, scores)


def _numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def write_candidates(path: str, candidates: Iterable[Candidate]) -> None:
    """Write candidates as LUNA16's CSV (for its official script too)."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['seriesuid', 'coordX', 'coordY', 'coordZ',
                         'probability'])
        writer.writerows(candidates)
