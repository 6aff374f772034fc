"""CocoMetric without an annotation file puts objects into COCO's size bins
(small < 32^2 <= medium < 96^2 <= large) by the ground truth's own ``area``,
as pycocotools does; boxes-only ground truth uses the box area w*h, in
float64 from the ground truth's numbers. AP by size equals pycocotools run
on the same ground truth and detections."""
import contextlib
import copy
import io

import pytest
import torch

from perception.evaluation.coco_metric import STAT_NAMES, CocoMetric
from perception.structures import DataSample, make_instances

pytest.importorskip('pycocotools', reason='pycocotools is the reference '
                    '(dev extra)')

# (x, y, w, h, area or None, label); areas like a segmentation's, smaller
# than the box, move objects into a smaller bin than their box
GT = [
    [(10, 10, 40, 40, 800.0, 0), (100, 20, 100, 100, 5000.0, 0),
     (60, 120, 20, 20, None, 1)],
    [(10.1, 20.3, 32, 32, None, 1), (150, 40, 96, 96, 9000.0, 0),
     (20, 100, 50, 30, 1400.5, 1)],
]
# one hit per object (30 x 30 inside each, away from bin edges), one miss
DETS = [
    [(12, 12, 36, 36, 0.9, 0), (102, 22, 96, 96, 0.8, 0),
     (61, 121, 18, 18, 0.7, 1), (250, 200, 40, 40, 0.6, 0)],
    [(11.1, 21.3, 30, 30, 0.5, 1), (152, 42, 92, 92, 0.95, 0),
     (22, 101, 46, 28, 0.4, 1)],
]


def reference(use_areas: bool = True) -> dict:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    anns, dets = [], []
    for img_id, (gts, preds) in enumerate(zip(GT, DETS), 1):
        for x, y, w, h, area, label in gts:
            anns.append(dict(id=len(anns) + 1, image_id=img_id,
                             category_id=label + 1, bbox=[x, y, w, h],
                             area=area if area is not None and use_areas
                             else w * h, iscrowd=0))
        for x, y, w, h, score, label in preds:
            dets.append(dict(image_id=img_id, category_id=label + 1,
                             bbox=[x, y, w, h], score=score))
    gt = dict(images=[dict(id=i, width=320, height=240) for i in (1, 2)],
              annotations=anns, categories=[dict(id=1, name='car'),
                                            dict(id=2, name='pedestrian')])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(STAT_NAMES, ev.stats))


def samples() -> list:
    out = []
    for gts, preds in zip(GT, DETS):
        s = DataSample(metainfo=dict(img_shape=(240, 320),
                                     ori_shape=(240, 320)))
        s.gt_instances = make_instances(
            [[x, y, x + w, y + h] for x, y, w, h, _, _ in gts],
            [g[-1] for g in gts])
        # what the readers give: the record's area, or w*h of its numbers
        s.gt_instances.areas = torch.tensor(
            [a if a is not None else w * h for _, _, w, h, a, _ in gts],
            dtype=torch.float64)
        s.pred_instances = make_instances(
            [[x, y, x + w, y + h] for x, y, w, h, _, _ in preds],
            [p[-1] for p in preds], scores=[p[-2] for p in preds])
        out.append(s)
    return out


@pytest.mark.parametrize('backend', ['faster_coco_eval', 'pycocotools'])
def test_size_bins_follow_the_ground_truths_area(backend):
    ref = reference()
    # the case can tell: box areas would put objects in other bins
    by_box = reference(use_areas=False)
    assert any(ref[k] != pytest.approx(by_box[k]) for k in
               ('APs', 'APm', 'APl'))
    metric = CocoMetric(backend=backend)
    metric.dataset_meta = dict(classes=('car', 'pedestrian'))
    metric.process({}, samples())
    got = metric.evaluate(2)
    for name in STAT_NAMES:
        assert got[f'coco/{name}'] == pytest.approx(ref[name], abs=1e-9), name
