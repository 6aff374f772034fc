"""KITTI's own 2D detection metric: AP at 40 recall points for the easy,
moderate and hard levels, per class, as the object devkit's
``evaluate_object`` computes it for 2D boxes (Geiger et al., "Are we ready
for Autonomous Driving? The KITTI Vision Benchmark Suite", CVPR 2012; the
40-point AP replaced 11 points in 2019, after Simonelli et al.,
"Disentangling Monocular 3D Object Detection", ICCV 2019).

Levels (a ground-truth box outside a level is *ignored* there: neither
found nor missed, and a detection matched to it is no false positive)::

    level      min height   max occlusion   max truncation
    easy       40 px        0 (visible)     0.15
    moderate   25 px        1 (partly)      0.30
    hard       25 px        2 (largely)     0.50

Heights are KITTI's ``bottom - top``: ground truth is outside a level at
``height <= min height``; a detection lower than the level's min height
(its height cut to an integer) is ignored, whatever its class, and may be
matched to a ground-truth box without counting (the devkit's rule). A
detection
is a hit when its IoU with a box of its class exceeds the class's overlap:
0.7 for car, truck, bus (and KITTI's Car, Van), 0.5 for pedestrian, rider,
bicycle, motorcycle (KITTI's Pedestrian, Cyclist) and every other class.
Detections covering a DontCare region (intersection over the detection's
own area above the same overlap) are not false positives. For each level
the devkit picks score thresholds at recall 0, 1/40, ..., 1, takes the
running maximum of precision from the right, and averages recall points
1/40 .. 1.

How our samples map onto the devkit's terms:

* Class-agnostic ground truth (label -1: DontCare, and whatever the class
  map sends to ``ignore``, e.g. Misc and Person_sitting in the built-in
  KITTI map) are DontCare regions for every class.
* Ground truth of a class flagged ``ignore_flags`` (the datasets' box
  filters, crowd boxes) is ignored for its class, as the devkit ignores
  neighbouring classes; ``neighbours`` adds the devkit's own pairs (Van for
  Car, Person_sitting for Pedestrian) when the class names are KITTI's.
* Occlusion and truncation come from ``gt_instances.occluded`` /
  ``.truncated`` (KittiDataset fills them); NaN (unknown) passes every
  level, so other formats are ranked by height alone.
* Boxes are compared in source-image pixels, in KITTI's numbers (first and
  last pixel, rounded to 0.01 px as in the label files): ground truth
  through :func:`perception.data.boxes_to_source`; predictions as the
  detector's ``predict`` returns them (source pixels, DESIGN.md), or
  through ``boxes_to_source`` too with ``pred_in_source=False``.

Config::

    val_evaluator = [dict(type='CocoMetric'), dict(type='KittiMetric')]

Results are fractions (the devkit prints percent): ``kitti/AP_car_easy``,
``kitti/AP_car_moderate``, ..., ``kitti/mAP_moderate`` (mean over classes
with ground truth at that level); -1 where a class has no ground truth.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from perception.data.boxes import xyxy_to_inclusive
from perception.data.geometry import boxes_to_source
from perception.registry import METRICS

LEVELS = ('easy', 'moderate', 'hard')
MIN_HEIGHT = (40, 25, 25)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
#: recall points 0, 1/40, ..., 1; AP averages the last 40
N_SAMPLE_PTS = 41
#: minimum overlap per class (lower-case name); others: ``default_iou``
DEFAULT_IOU = {'car': 0.7, 'van': 0.7, 'truck': 0.7, 'bus': 0.7,
               'pedestrian': 0.5, 'person_sitting': 0.5, 'cyclist': 0.5,
               'rider': 0.5, 'bicycle': 0.5, 'motorcycle': 0.5}
#: the devkit's neighbouring classes: ignored, not missed, for the class
KITTI_NEIGHBOURS = {'car': ('van', ), 'pedestrian': ('person_sitting', )}


def _overlap(det: np.ndarray, gt: np.ndarray, over_det: bool = False
             ) -> np.ndarray:
    """(G, D) IoU (or intersection over detection area) of KITTI boxes,
    computed as the devkit does (``(x2 - x1) * (y2 - y1)`` areas)."""
    if len(det) == 0 or len(gt) == 0:
        return np.zeros((len(gt), len(det)))
    x1 = np.maximum(gt[:, None, 0], det[None, :, 0])
    y1 = np.maximum(gt[:, None, 1], det[None, :, 1])
    x2 = np.minimum(gt[:, None, 2], det[None, :, 2])
    y2 = np.minimum(gt[:, None, 3], det[None, :, 3])
    w, h = x2 - x1, y2 - y1
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    det_area = (det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1])
    if over_det:
        return inter / det_area[None]
    gt_area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    union = det_area[None] + gt_area[:, None] - inter
    return np.where(inter > 0, inter / np.where(union > 0, union, 1), 0.0)


def thresholds_for_recall(scores: Sequence[float], n_gt: int) -> list[float]:
    """The devkit's ``getThresholds``: scores (of true positives) giving
    recall closest to 0, 1/40, ..., 1."""
    v = sorted(scores, reverse=True)
    out, current = [], 0.0
    for i, score in enumerate(v):
        left = (i + 1) / n_gt
        right = (i + 2) / n_gt if i < len(v) - 1 else left
        if right - current < current - left and i < len(v) - 1:
            continue
        out.append(score)
        current += 1.0 / (N_SAMPLE_PTS - 1.0)
    return out[:N_SAMPLE_PTS]


class _Frame:
    """One image seen for one class: what matching needs."""

    def __init__(self, overlaps, dc_overlaps, gt_kind, gt_height, gt_occ,
                 gt_trunc, det_height, det_mine, scores) -> None:
        self.overlaps, self.dc_overlaps = overlaps, dc_overlaps
        self.gt_kind = gt_kind  # 1 class, 0 ignored for the class
        self.gt_height, self.gt_occ, self.gt_trunc = gt_height, gt_occ, gt_trunc
        self.det_height, self.det_mine = det_height, det_mine
        self.scores = scores

    def clean(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """(ignored_gt, ignored_det) as the devkit's ``cleanData``: 0
        evaluated, 1 ignored, -1 not of the class (the frame holds only gt
        of the class or its neighbours)."""
        with np.errstate(invalid='ignore'):
            hard = ((self.gt_occ > MAX_OCCLUSION[level])
                    | (self.gt_trunc > MAX_TRUNCATION[level])
                    | (self.gt_height <= MIN_HEIGHT[level]))
        ignored_gt = np.where((self.gt_kind == 1) & ~hard, 0, 1)
        # as in the devkit, a too-low detection is ignored (and may absorb a
        # ground-truth box) whatever its class
        ignored_det = np.where(self.det_height < MIN_HEIGHT[level], 1,
                               np.where(self.det_mine, 0, -1))
        return ignored_gt, ignored_det

    def statistics(self, ignored_gt, ignored_det, min_overlap: float,
                   thresh: float | None) -> tuple[int, int, int, list]:
        """The devkit's ``computeStatistics``: (tp, fp, fn, tp scores);
        ``thresh`` None is its first pass (no false positives counted)."""
        compute_fp = thresh is not None
        n_det = len(self.scores)
        assigned = np.zeros(n_det, bool)
        low = (self.scores < thresh) if compute_fp else np.zeros(n_det, bool)
        tp = fn = 0
        tp_scores = []
        usable = ignored_det != -1
        for i in range(len(ignored_gt)):
            cand = (usable & ~assigned & ~low
                    & (self.overlaps[i] > min_overlap))
            j = -1
            if cand.any():
                idx = np.flatnonzero(cand)
                if not compute_fp:
                    j = idx[np.argmax(self.scores[idx])]
                else:
                    valid = idx[ignored_det[idx] == 0]
                    j = (valid[np.argmax(self.overlaps[i, valid])]
                         if len(valid) else idx[0])
            if j < 0:
                fn += int(ignored_gt[i] == 0)
            elif ignored_gt[i] == 1 or ignored_det[j] == 1:
                assigned[j] = True
            else:
                tp += 1
                tp_scores.append(float(self.scores[j]))
                assigned[j] = True
        fp = 0
        if compute_fp:
            fp = int((~(assigned | (ignored_det != 0) | low)).sum())
            for region in self.dc_overlaps:
                stuff = (~assigned & (ignored_det == 0) & ~low
                         & (region > min_overlap))
                assigned |= stuff
                fp -= int(stuff.sum())
        return tp, fp, fn, tp_scores


def class_ap(frames: Sequence[_Frame], level: int,
             min_overlap: float) -> float | None:
    """AP (40 recall points) of one class at one level; None without
    ground truth at that level."""
    cleaned = [frame.clean(level) for frame in frames]
    n_gt = int(sum((ig == 0).sum() for ig, _ in cleaned))
    if n_gt == 0:
        return None
    scores = []
    for frame, (ig, idet) in zip(frames, cleaned):
        scores += frame.statistics(ig, idet, min_overlap, None)[3]
    thresholds = thresholds_for_recall(scores, n_gt)
    precision = np.zeros(N_SAMPLE_PTS)
    for t, thresh in enumerate(thresholds):
        tp = fp = 0
        for frame, (ig, idet) in zip(frames, cleaned):
            f_tp, f_fp, _, _ = frame.statistics(ig, idet, min_overlap,
                                                thresh)
            tp, fp = tp + f_tp, fp + f_fp
        precision[t] = tp / (tp + fp) if tp + fp else 0.0
    for t in range(len(thresholds)):
        precision[t] = precision[t:].max()
    return float(precision[1:].sum() / (N_SAMPLE_PTS - 1))


def evaluate_kitti(images: Sequence[dict], class_names: Sequence[str],
                   iou_thresholds: dict[str, float] | None = None,
                   default_iou: float = 0.5,
                   neighbours: dict[str, Sequence[str]] | None = None,
                   eval_classes: Sequence[str] | None = None) -> dict:
    """KITTI 2D AP of every class and level.

    Args:
        images: per image ``gt_bboxes`` (G, 4), ``gt_labels`` (G,) (-1 =
            DontCare), ``gt_ignore`` (G,) bool, ``gt_occluded`` /
            ``gt_truncated`` (G,) (NaN = unknown), ``pred_bboxes`` (D, 4),
            ``pred_labels``, ``scores``; boxes in KITTI's numbers (first
            and last pixel) of the source image.
        class_names: name of each label.
        iou_thresholds: overlap per class name, over :data:`DEFAULT_IOU`.
        default_iou: overlap of classes in neither.
        neighbours: class name -> names ignored (not missed) for it;
            default :data:`KITTI_NEIGHBOURS`.
        eval_classes: names to evaluate; default every class with ground
            truth or detections.

    Returns:
        ``{'AP_<class>_<level>': ..., 'mAP_<level>': ...}``, -1 where there
        is no ground truth.
    """
    names = list(class_names)
    lower = [n.lower() for n in names]
    iou = {k.lower(): v for k, v in DEFAULT_IOU.items()}
    iou.update({k.lower(): v for k, v in (iou_thresholds or {}).items()})
    pairs = {k.lower(): [n.lower() for n in v] for k, v in (
        KITTI_NEIGHBOURS if neighbours is None else neighbours).items()}
    if eval_classes is None:
        present = set()
        for img in images:
            present |= set(int(v) for v in img['gt_labels'] if v >= 0)
            present |= set(int(v) for v in img['pred_labels'])
        labels = sorted(v for v in present if v < len(names))
    else:
        unknown = [n for n in eval_classes if n not in names]
        if unknown:
            raise ValueError(f'KittiMetric: eval_classes {unknown} are not '
                             f'among the classes {names}')
        labels = [names.index(n) for n in eval_classes]
    metrics, per_level = {}, {level: [] for level in LEVELS}
    for label in labels:
        near = [lower.index(n) for n in pairs.get(lower[label], [])
                if n in lower]
        frames = [_frame_for_class(img, label, near) for img in images]
        frames = [f for f in frames if f is not None]
        overlap = iou.get(lower[label], default_iou)
        for level, level_name in enumerate(LEVELS):
            ap = class_ap(frames, level, overlap)
            metrics[f'AP_{names[label]}_{level_name}'] = (
                -1.0 if ap is None else ap)
            if ap is not None:
                per_level[level_name].append(ap)
    for level_name, values in per_level.items():
        metrics[f'mAP_{level_name}'] = (float(np.mean(values)) if values
                                        else -1.0)
    return metrics


def _frame_for_class(img: dict, label: int, near: Sequence[int]
                     ) -> _Frame | None:
    gt_labels = np.asarray(img['gt_labels'])
    ignore = np.asarray(img['gt_ignore'], bool)
    mine = gt_labels == label
    kept = mine | np.isin(gt_labels, near)
    det_mine = np.asarray(img['pred_labels']) == label
    if not kept.any() and not det_mine.any():
        return None
    gt_boxes = np.asarray(img['gt_bboxes'], np.float64).reshape(-1, 4)
    det_boxes = np.asarray(img['pred_bboxes'], np.float64).reshape(-1, 4)
    # the devkit stores a detection's height as an int32
    det_height = np.trunc(np.abs(det_boxes[:, 3] - det_boxes[:, 1]))
    # other classes' detections matter only while too low for some level
    det = det_mine | (det_height < max(MIN_HEIGHT))
    gt, dets = gt_boxes[kept], det_boxes[det]
    dontcare = gt_boxes[gt_labels < 0]
    return _Frame(
        overlaps=_overlap(dets, gt),
        dc_overlaps=_overlap(dets, dontcare, over_det=True),
        gt_kind=np.where(mine[kept] & ~ignore[kept], 1, 0),
        gt_height=gt[:, 3] - gt[:, 1],
        gt_occ=np.asarray(img['gt_occluded'], np.float64)[kept],
        gt_trunc=np.asarray(img['gt_truncated'], np.float64)[kept],
        det_height=det_height[det], det_mine=det_mine[det],
        scores=np.asarray(img['scores'], np.float64)[det])


def _np(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@METRICS.register_module()
class KittiMetric(BaseMetric):
    """KITTI 2D detection AP (40 recall points) for easy, moderate and
    hard, per class (module docstring).

    Args:
        classes: class names (label = index); default the dataset's.
        iou_thresholds: minimum overlap per class name, over
            :data:`DEFAULT_IOU` (0.7 car/truck/bus, 0.5 people and bikes).
        default_iou: overlap of other classes.
        neighbours: class name -> class names ignored for it (default
            KITTI's: Van for Car, Person_sitting for Pedestrian).
        eval_classes: class names to report (e.g. ``['car',
            'pedestrian', 'rider']``, KITTI's three); default every class
            with ground truth or detections.
        pred_in_source: predictions are in source pixels already (the
            detector's ``predict``); False maps them back as the ground
            truth is.
    """

    default_prefix = 'kitti'

    def __init__(self, classes: Sequence[str] | None = None,
                 iou_thresholds: dict[str, float] | None = None,
                 default_iou: float = 0.5,
                 neighbours: dict[str, Sequence[str]] | None = None,
                 eval_classes: Sequence[str] | None = None,
                 pred_in_source: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classes, self.iou_thresholds = classes, iou_thresholds
        self.default_iou, self.neighbours = default_iou, neighbours
        self.eval_classes, self.pred_in_source = eval_classes, pred_in_source

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            pred = sample.get('pred_instances', {})
            gt = sample.get('gt_instances', {})
            gt_boxes = boxes_to_source(sample, _np(gt.get(
                'bboxes', np.zeros((0, 4)))).reshape(-1, 4))
            pred_boxes = _np(pred.get('bboxes', np.zeros((0, 4)))).reshape(
                -1, 4)
            if not self.pred_in_source:
                pred_boxes = boxes_to_source(sample, pred_boxes)
            n = len(gt_boxes)
            nan = np.full(n, np.nan)
            self.results.append(dict(
                # KITTI's numbers as its files hold them (0.01 px)
                gt_bboxes=np.round(xyxy_to_inclusive(gt_boxes).astype(
                    np.float64), 2),
                gt_labels=_np(gt.get('labels', np.zeros(0))).reshape(-1),
                gt_ignore=_np(gt.get('ignore_flags', np.zeros(n, bool))
                              ).reshape(-1).astype(bool),
                gt_occluded=_np(gt.get('occluded', nan)).reshape(-1),
                gt_truncated=_np(gt.get('truncated', nan)).reshape(-1),
                pred_bboxes=np.round(xyxy_to_inclusive(pred_boxes).astype(
                    np.float64), 2),
                pred_labels=_np(pred.get('labels', np.zeros(0))).reshape(-1),
                scores=_np(pred.get('scores', np.zeros(0))).reshape(-1)))

    def compute_metrics(self, results: list) -> dict:
        names = self.classes or (self.dataset_meta or {}).get('classes')
        if names is None:
            top = max([int(r['gt_labels'].max(initial=-1)) for r in results]
                      + [int(r['pred_labels'].max(initial=-1))
                         for r in results] + [0])
            names = [str(i) for i in range(top + 1)]
        metrics = evaluate_kitti(results, names, self.iou_thresholds,
                                 self.default_iou, self.neighbours,
                                 self.eval_classes)
        print_log('\n' + format_table(metrics), logger='current')
        return metrics


def format_table(metrics: dict) -> str:
    """The per-class table in the devkit's percent."""
    rows = sorted({k[3:].rsplit('_', 1)[0] for k in metrics
                   if k.startswith('AP_')})
    width = max([len(r) for r in rows] + [5])
    lines = ['KITTI 2D AP (40 recall points, %)',
             f"{'class':<{width}}  " + '  '.join(f'{lv:>8}' for lv in LEVELS)]
    for row in rows + ['mAP']:
        key = 'AP_' + row + '_' if row != 'mAP' else 'mAP_'
        values = [metrics.get(key + level, -1.0) for level in LEVELS]
        lines.append(f'{row:<{width}}  ' + '  '.join(
            f'{v * 100:8.2f}' if v >= 0 else f"{'-':>8}" for v in values))
    return '\n'.join(lines)
