"""COCO-style box AP as an mmengine metric, computed by a maintained COCO
evaluation library (faster-coco-eval by default, pycocotools on request).

Ground truth comes from the data samples (``gt_instances``) or from a COCO
JSON file (``ann_file``). Ignore regions (``ignore_flags``) become COCO
crowd annotations, which the library neither counts as objects to find nor
lets a detection inside them count as a false positive; a class-agnostic
ignore region (label -1, e.g. KITTI DontCare) applies to every class.
Boxes are mapped back to the original image through ``homography_matrix``
when the samples carry one, so the size ranges (small < 32^2 <= medium <
96^2 <= large) are in original pixels.

"Area", which decides an object's size range, is what pycocotools uses: the
ground truth's own ``area`` (``gt_instances.areas``: a COCO file's
``area`` field, a segmentation's area where the file has one, which the
readers carry through as ``gt_areas``); for boxes-only ground truth the box
area w * h in original pixels, computed by the readers in float64 from the
numbers in the label file (recomputed here from the boxes only when a sample
has no areas, or when they cannot be in original pixels: ``map_back=False``
on a resized sample). A detection's area is its box's w * h, as
pycocotools' ``loadRes`` computes it.
"""
from __future__ import annotations

import contextlib
import io
import json
from typing import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from perception.data.boxes import xyxy_to_xywh
from perception.data.geometry import (
    boxes_to_current,
    boxes_to_source,
    pred_boxes_to_source,
    preds_in_source,
)
from perception.registry import METRICS

#: Names of ``COCOeval.stats`` entries, in order.
STAT_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10',
              'AR100', 'ARs', 'ARm', 'ARl')


def _library(backend: str):
    if backend == 'faster_coco_eval':
        from faster_coco_eval import COCO, COCOeval_faster
        return COCO, COCOeval_faster
    if backend == 'pycocotools':
        try:
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
        except ImportError:
            raise ImportError("backend='pycocotools' needs it installed: "
                              'pip install pycocotools') from None
        return COCO, COCOeval
    raise ValueError(f"backend must be 'faster_coco_eval' or 'pycocotools', "
                     f'got {backend!r}')


def evaluate_coco(gt: dict, detections: list[dict],
                  backend: str = 'faster_coco_eval',
                  class_names: dict[int, str] | None = None) -> dict:
    """COCO box evaluation of ``detections`` against the ``gt`` dict.

    Args:
        gt: COCO ground truth (``images``, ``annotations``, ``categories``;
            ``info``/``licenses`` optional).
        detections: ``[{'image_id', 'category_id', 'bbox': xywh,
            'score'}]``; may be empty.
        backend: 'faster_coco_eval' or 'pycocotools'.
        class_names: category id -> name for per-class AP (``AP_<name>``).

    Returns:
        ``{'AP': ..., 'AP50': ..., ..., 'AP_<name>': ...}``; -1 where there
        is no ground truth (the library's convention).
    """
    COCO, COCOeval = _library(backend)
    gt = dict(gt)
    gt.setdefault('info', {})  # loadRes copies it in some versions
    gt.setdefault('licenses', [])
    for ann in gt.get('annotations', []):
        ann.setdefault('iscrowd', 0)
        ann.setdefault('area', float(ann['bbox'][2] * ann['bbox'][3]))
    if not gt.get('images'):
        return {name: -1.0 for name in STAT_NAMES}
    if not detections:
        # the libraries cannot load an empty result list: one detection of
        # score 0 far outside every image changes no number (it matches
        # nothing, and precision is 0 anyway when nothing is found)
        cat = gt['categories'][0]['id'] if gt.get('categories') else 1
        detections = [dict(image_id=gt['images'][0]['id'], category_id=cat,
                           bbox=[-1e5, -1e5, 1.0, 1.0], score=0.0)]
    with contextlib.redirect_stdout(io.StringIO()) as log:
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    print_log('\n' + log.getvalue(), logger='current')
    metrics = {name: float(v) for name, v in zip(STAT_NAMES,
                                                 evaluator.stats)}
    precision = evaluator.eval['precision']  # (T, R, K, A, M)
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        name = (class_names or {}).get(cat_id, str(cat_id))
        metrics[f'AP_{name}'] = float(values.mean()) if values.size else -1.0
    return metrics


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO box AP, AP50, AP75, AP by size, AR and per-class AP.

    Args:
        ann_file: COCO JSON ground truth; default: the samples'
            ``gt_instances``. With a file, samples need the file's image
            id as ``img_id`` meta (add ``'img_id'`` to ``PackInputs``'
            ``meta_keys``; CocoDetDataset sets it) and class names must
            match the file's category names.
        classes: class names (label = index); default the dataset's
            ``classes`` metainfo.
        classwise: add ``AP_<class>`` entries.
        map_back: evaluate in original-image pixels through
            ``homography_matrix`` when present.
        backend: 'faster_coco_eval' (default) or 'pycocotools'.
        outfile: also write the detections as COCO results (a JSON list of
            ``image_id``, ``category_id``, ``bbox`` xywh, ``score``; what
            ``COCO.loadRes`` reads) and the categories and images they
            refer to beside it (``<outfile stem>.gt.json``, COCO ground
            truth). ``perception test --out FILE`` sets it.
    """

    default_prefix = 'coco'

    def __init__(self, ann_file: str | None = None,
                 classes: Sequence[str] | None = None,
                 classwise: bool = True, map_back: bool = True,
                 backend: str = 'faster_coco_eval',
                 outfile: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outfile = outfile
        _library(backend)  # fail at build time, not after a whole epoch
        self.ann_file, self.classes = ann_file, classes
        self.classwise, self.map_back, self.backend = (classwise, map_back,
                                                       backend)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            pred = sample.get('pred_instances', {})
            gt = sample.get('gt_instances', {})
            back = self.map_back and \
                sample.get('homography_matrix') is not None

            def gt_boxes(inst, sample=sample, back=back):
                b = _np(inst.get('bboxes', np.zeros((0, 4)))).reshape(-1, 4)
                return boxes_to_source(sample, b) if back else b

            def pred_boxes(inst, sample=sample, back=back):
                # a Detector's predictions are in source pixels already
                b = _np(inst.get('bboxes', np.zeros((0, 4)))).reshape(-1, 4)
                if back:
                    return pred_boxes_to_source(sample, b)
                return boxes_to_current(sample, b) if preds_in_source(
                    sample) else b
            shape = sample.get('ori_shape' if back
                               else 'img_shape') or sample.get('img_shape')
            # the ground truth's areas are in source pixels
            source = back or sample.get('homography_matrix') is None
            boxes = gt_boxes(gt)
            self.results.append(dict(
                img_id=sample.get('img_id', sample.get('sample_idx')),
                shape=tuple(shape) if shape is not None else (0, 0),
                pred_bboxes=pred_boxes(pred),
                scores=_np(pred.get('scores', np.zeros(0))).reshape(-1),
                pred_labels=_np(pred.get('labels', np.zeros(0))).reshape(-1),
                gt_bboxes=boxes,
                gt_areas=gt_areas(boxes, gt.get('areas') if source
                                  else None),
                gt_labels=_np(gt.get('labels', np.zeros(0))).reshape(-1),
                gt_ignore=_np(gt.get('ignore_flags', np.zeros(0))
                              ).reshape(-1).astype(bool)))

    def _class_names(self) -> list[str]:
        names = self.classes or (self.dataset_meta or {}).get('classes')
        if names is None:
            top = max([int(r['gt_labels'].max(initial=-1)) for r in
                       self.results] + [int(r['pred_labels'].max(
                           initial=-1)) for r in self.results] + [0])
            names = [str(i) for i in range(top + 1)]
        return list(names)

    def compute_metrics(self, results: list) -> dict:
        names = self._class_names()
        if self.ann_file:
            gt, cat_of_label, image_ids = self._gt_from_file(names, results)
        else:
            gt = _gt_from_samples(results, names)
            cat_of_label = {i: i + 1 for i in range(len(names))}
            image_ids = list(range(1, len(results) + 1))
        dets = []
        for image_id, r in zip(image_ids, results):
            xywh = xyxy_to_xywh(r['pred_bboxes'])
            for box, score, label in zip(xywh, r['scores'], r['pred_labels']):
                if int(label) in cat_of_label:
                    dets.append(dict(image_id=image_id,
                                     category_id=cat_of_label[int(label)],
                                     bbox=[float(v) for v in box],
                                     score=float(score)))
        id_to_name = {c['id']: c['name'] for c in gt['categories']}
        if self.outfile:
            self._write(gt, dets)
        metrics = evaluate_coco(gt, dets, self.backend, id_to_name)
        if not self.classwise:
            metrics = {k: v for k, v in metrics.items()
                       if not k.startswith('AP_')}
        return metrics

    def _write(self, gt: dict, dets: list) -> None:
        import os
        folder = os.path.dirname(os.path.abspath(self.outfile))
        os.makedirs(folder, exist_ok=True)
        with open(self.outfile, 'w', encoding='utf-8') as f:
            json.dump(dets, f)
        stem = os.path.splitext(self.outfile)[0]
        with open(stem + '.gt.json', 'w', encoding='utf-8') as f:
            json.dump(gt, f)
        print_log(f'wrote {len(dets)} detections (COCO results) to '
                  f'{self.outfile} and their ground truth to {stem}.gt.json',
                  logger='current')

    def _gt_from_file(self, names, results):
        with open(self.ann_file, encoding='utf-8') as f:
            gt = json.load(f)
        by_name = {c['name']: c['id'] for c in gt.get('categories', [])}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f'CocoMetric: classes {missing} are not '
                             f'categories of {self.ann_file} '
                             f'({sorted(by_name)}); set `classes` to names '
                             'the file uses')
        known = {img['id'] for img in gt.get('images', [])}
        image_ids = [r['img_id'] for r in results]
        unknown = [i for i in image_ids if i not in known]
        if unknown:
            raise ValueError(f'CocoMetric: img_id {unknown[:3]} not in '
                             f'{self.ann_file}; the dataset must put the '
                             "file's image ids in the `img_id` meta key")
        # evaluate only the images that were seen
        seen = set(image_ids)
        gt = dict(gt, images=[i for i in gt['images'] if i['id'] in seen],
                  annotations=[a for a in gt.get('annotations', [])
                               if a['image_id'] in seen])
        return gt, {i: by_name[n] for i, n in enumerate(names)}, image_ids


def gt_areas(boxes: np.ndarray, areas=None) -> np.ndarray:
    """The COCO ``area`` of each ground-truth box: ``areas`` where given
    and finite, else w * h of the (N, 4) xyxy ``boxes`` in float64."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if areas is not None:
        given = _np(areas).astype(np.float64).reshape(-1)
        if given.shape == out.shape:
            out = np.where(np.isfinite(given), given, out)
    return out


def _np(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _gt_from_samples(results: list, names: list[str]) -> dict:
    """COCO ground-truth dict from processed samples (ids from 1)."""
    images, anns = [], []
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(names)]
    for image_id, r in enumerate(results, 1):
        h, w = r['shape'][:2]
        images.append(dict(id=image_id, width=int(w), height=int(h)))
        areas = r.get('gt_areas')
        if areas is None:
            areas = gt_areas(r['gt_bboxes'])
        for box, area, label, ignore in zip(
                xyxy_to_xywh(np.asarray(r['gt_bboxes'], np.float64)), areas,
                r['gt_labels'], r['gt_ignore']):
            label = int(label)
            if label < 0 and not ignore:
                continue
            cats = ([c['id'] for c in categories] if label < 0
                    else [label + 1])
            for cat in cats:
                anns.append(dict(id=len(anns) + 1, image_id=image_id,
                                 category_id=cat,
                                 bbox=[float(v) for v in box],
                                 area=float(area),
                                 iscrowd=int(bool(ignore))))
    return dict(images=images, annotations=anns, categories=categories)
