"""Slice detections of one series -> 3D lesion findings in LPS millimetres.

The merge rule (one rule for inference, findings JSON, SR and FROC):

1. Every detection is a box (xyxy pixel-edge, source pixels of its slice),
   a score and a label on slice ``k`` of the series.
2. Two detections are *linked* when they have the same label, lie on
   slices at most ``max_gap + 1`` apart (``max_gap`` missed slices are
   bridged; 0: only adjacent slices), and overlap in the slice plane:
   box IoU >= ``iou_thr``, or the centre of one box lies inside the other
   (a small section near a nodule's pole inside the large middle one).
   Two boxes on the same slice are never linked directly (NMS already
   separated them).
3. A finding is a connected group of linked detections. Its ``score`` is
   the highest member score; its centre is the mean of the members'
   centres in LPS weighted by score x section area in mm² (the centroid
   of the sections of a sphere, which is its centre when the sections
   are symmetric); ``diameter_mm`` is the largest member section diameter
   (mean of the box's width and height in mm); ``slice_range`` is
   ``[first, last]`` slice index (inclusive).

Box centres go to LPS through the series affine (index (z, y, x, 1) ->
LPS, so oblique series are handled) with
:func:`perception.data.geometry.points_to_lps`, the one back-mapping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from perception.data.geometry import points_to_lps


@dataclass
class SliceDetection:
    """One box on one slice of a series (source pixels)."""

    slice_index: int
    box: np.ndarray
    score: float
    label: int = 0
    sop_instance_uid: str | None = None


@dataclass
class Finding:
    """A 3D lesion finding (see the module docstring for the rule)."""

    series_uid: str
    center_lps: list[float]
    diameter_mm: float
    score: float
    slice_range: list[int]
    label: int = 0
    class_name: str = 'lesion'
    slices: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(series_uid=self.series_uid,
                    center_lps=[round(float(v), 4) for v in self.center_lps],
                    diameter_mm=round(float(self.diameter_mm), 4),
                    score=round(float(self.score), 6),
                    slice_range=[int(v) for v in self.slice_range],
                    label=int(self.label), class_name=self.class_name,
                    slices=self.slices)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) \
        - inter
    return float(inter / union) if union > 0 else 0.0


def _centre_inside(a: np.ndarray, b: np.ndarray) -> bool:
    cx, cy = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return bool(b[0] <= cx <= b[2] and b[1] <= cy <= b[3])


def linked(a: SliceDetection, b: SliceDetection, iou_thr: float = 0.3,
           max_gap: int = 1) -> bool:
    """Whether two detections belong to one finding (rule 2)."""
    gap = abs(a.slice_index - b.slice_index)
    if a.label != b.label or gap == 0 or gap > max_gap + 1:
        return False
    return box_iou(a.box, b.box) >= iou_thr or _centre_inside(a.box, b.box) \
        or _centre_inside(b.box, a.box)


def _groups(dets: Sequence[SliceDetection], iou_thr: float,
            max_gap: int) -> list[list[int]]:
    parent = list(range(len(dets)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(dets)), key=lambda i: dets[i].slice_index)
    for n, i in enumerate(order):
        for j in order[n + 1:]:
            if dets[j].slice_index - dets[i].slice_index > max_gap + 1:
                break
            if linked(dets[i], dets[j], iou_thr, max_gap):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(dets)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def merge_detections(dets: Sequence[SliceDetection], affine: np.ndarray,
                     series_uid: str, class_names: Sequence[str] = ('lesion',),
                     iou_thr: float = 0.3, max_gap: int = 1) -> list[Finding]:
    """Findings of one series from its slice detections (the module's
    rule), strongest first.

    Args:
        dets: detections on the series' slices, boxes in source pixels.
        affine: the series' 4x4 index (z, y, x, 1) -> LPS mm.
        series_uid: written into every finding.
        class_names: names of the labels.
        iou_thr, max_gap: the linking rule's overlap and bridged slices.
    """
    affine = np.asarray(affine, np.float64)
    _, sy, sx = np.linalg.norm(affine[:3, :3], axis=0)
    findings = []
    for group in _groups(dets, iou_thr, max_gap):
        members = sorted((dets[i] for i in group),
                         key=lambda d: (d.slice_index, -d.score))
        centres, weights, diameters = [], [], []
        for d in members:
            box = np.asarray(d.box, np.float64)
            centres.append(points_to_lps(
                dict(affine=affine, slice_index=d.slice_index),
                [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2],
                space='source'))
            w, h = (box[2] - box[0]) * sx, (box[3] - box[1]) * sy
            weights.append(max(d.score, 1e-6) * max(w * h, 1e-6))
            diameters.append((w + h) / 2)
        weights = np.asarray(weights)
        centre = (np.asarray(centres) * weights[:, None]).sum(0) / weights.sum()
        label = members[0].label
        findings.append(Finding(
            series_uid=str(series_uid), center_lps=centre.tolist(),
            diameter_mm=float(max(diameters)),
            score=float(max(d.score for d in members)),
            slice_range=[members[0].slice_index, members[-1].slice_index],
            label=int(label),
            class_name=class_names[label] if 0 <= label < len(class_names)
            else str(label),
            slices=[dict(slice_index=int(d.slice_index),
                         box=[round(float(v), 3) for v in d.box],
                         score=round(float(d.score), 6),
                         **({'sop_instance_uid': d.sop_instance_uid}
                            if d.sop_instance_uid else {}))
                    for d in members]))
    findings.sort(key=lambda f: -f.score)
    return findings
