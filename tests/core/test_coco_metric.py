"""CocoMetric against pycocotools' own numbers on hand-built cases."""
import contextlib
import copy
import io

import numpy as np
import pytest

from perception.evaluation.coco_metric import STAT_NAMES, CocoMetric, evaluate_coco
from perception.structures import DataSample, make_instances

pycocotools = pytest.importorskip('pycocotools', reason='pycocotools is the '
                                  'reference (dev extra)')

CLASSES = ('car', 'pedestrian')

# three images, pixel-edge xyxy; labels 0 car, 1 pedestrian, -1 agnostic
GT = [
    dict(boxes=[[10, 10, 60, 50], [100, 100, 120, 160], [200, 20, 300, 120]],
         labels=[0, 1, 0], ignore=[False, False, True]),
    dict(boxes=[[5, 5, 25, 25], [50, 50, 250, 200], [0, 150, 40, 200]],
         labels=[1, 0, -1], ignore=[False, False, True]),
    dict(boxes=[], labels=[], ignore=[]),
]
PRED = [
    dict(boxes=[[12, 11, 60, 52], [101, 98, 121, 158], [210, 30, 290, 110],
                [400, 10, 420, 30]],
         scores=[0.9, 0.8, 0.95, 0.3], labels=[0, 1, 0, 1]),
    dict(boxes=[[6, 4, 26, 27], [60, 60, 240, 190], [5, 160, 30, 195],
                [100, 60, 200, 100]],
         scores=[0.6, 0.7, 0.85, 0.4], labels=[1, 0, 0, 0]),
    dict(boxes=[[10, 10, 50, 50]], scores=[0.5], labels=[1]),
]


def _samples(preds):
    samples = []
    for gt, pred in zip(GT, preds):
        s = DataSample(metainfo=dict(img_shape=(240, 320),
                                     ori_shape=(240, 320)))
        s.gt_instances = make_instances(np.array(gt['boxes']).reshape(-1, 4),
                                        gt['labels'], gt['ignore'])
        s.pred_instances = make_instances(
            np.array(pred['boxes']).reshape(-1, 4), pred['labels'],
            scores=pred['scores'])
        samples.append(s)
    return samples


def _reference_gt():
    """The same ground truth written by hand in COCO form (crowd=ignore;
    the class-agnostic region repeated for both classes)."""
    anns = []
    for img_id, gt in enumerate(GT, 1):
        for box, label, ign in zip(gt['boxes'], gt['labels'], gt['ignore']):
            x1, y1, x2, y2 = box
            for cat in ([1, 2] if label < 0 else [label + 1]):
                anns.append(dict(id=len(anns) + 1, image_id=img_id,
                                 category_id=cat,
                                 bbox=[x1, y1, x2 - x1, y2 - y1],
                                 area=(x2 - x1) * (y2 - y1),
                                 iscrowd=int(ign)))
    return dict(info={}, licenses=[],
                images=[dict(id=i, width=320, height=240) for i in (1, 2, 3)],
                annotations=anns,
                categories=[dict(id=1, name='car'),
                            dict(id=2, name='pedestrian')])


def _reference_dets(preds):
    dets = []
    for img_id, pred in enumerate(preds, 1):
        for (x1, y1, x2, y2), s, label in zip(pred['boxes'], pred['scores'],
                                              pred['labels']):
            dets.append(dict(image_id=img_id, category_id=label + 1,
                             bbox=[x1, y1, x2 - x1, y2 - y1], score=s))
    return dets


def _pycocotools(gt, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = []
    for k in range(2):
        p = ev.eval['precision'][:, :, k, 0, -1]
        per_class.append(float(p[p > -1].mean()) if (p > -1).any() else -1)
    return dict(zip(STAT_NAMES, ev.stats)), per_class


def _run_metric(preds, backend):
    metric = CocoMetric(backend=backend)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, _samples(preds))
    return metric.evaluate(len(GT))


@pytest.mark.parametrize('backend', ['faster_coco_eval', 'pycocotools'])
def test_matches_pycocotools_with_ignore_regions(backend):
    ref, ref_cls = _pycocotools(_reference_gt(), _reference_dets(PRED))
    got = _run_metric(PRED, backend)
    for name in STAT_NAMES:
        assert got[f'coco/{name}'] == pytest.approx(ref[name], abs=1e-6), name
    assert got['coco/AP_car'] == pytest.approx(ref_cls[0], abs=1e-6)
    assert got['coco/AP_pedestrian'] == pytest.approx(ref_cls[1], abs=1e-6)
    assert 0 < got['coco/AP'] < 1


def test_ignore_regions_change_the_score():
    """Without the crowd flag the detections inside the ignore regions
    would be false positives: AP must differ, and ours must equal the
    ignore-aware reference."""
    gt = _reference_gt()
    for ann in gt['annotations']:
        ann['iscrowd'] = 0
    no_ignore, _ = _pycocotools(gt, _reference_dets(PRED))
    with_ignore, _ = _pycocotools(_reference_gt(), _reference_dets(PRED))
    assert no_ignore['AP'] != pytest.approx(with_ignore['AP'])
    assert _run_metric(PRED, 'faster_coco_eval')['coco/AP'] == pytest.approx(
        with_ignore['AP'], abs=1e-6)


@pytest.mark.parametrize('backend', ['faster_coco_eval', 'pycocotools'])
def test_no_predictions(backend):
    empty = [dict(boxes=[], scores=[], labels=[]) for _ in GT]
    got = _run_metric(empty, backend)
    # pycocotools cannot load an empty result list; its numbers for a lone
    # detection that overlaps nothing are what "found nothing" means
    ref, ref_cls = _pycocotools(_reference_gt(), [dict(
        image_id=3, category_id=1, bbox=[300, 200, 5, 5], score=0.1)])
    for name in STAT_NAMES:
        assert got[f'coco/{name}'] == pytest.approx(ref[name]), name
    assert got['coco/AP'] == 0.0
    assert got['coco/APl'] == ref['APl']
    assert [got['coco/AP_car'], got['coco/AP_pedestrian']] == [0.0, 0.0]


def test_ground_truth_without_info_key():
    gt = _reference_gt()
    del gt['info'], gt['licenses']
    dets = _reference_dets(PRED)
    ref, _ = _pycocotools(_reference_gt(), dets)
    for backend in ('faster_coco_eval', 'pycocotools'):
        got = evaluate_coco(copy.deepcopy(gt), dets, backend)
        assert got['AP'] == pytest.approx(ref['AP'], abs=1e-6)


def test_predictions_map_back_through_homography():
    """Samples resized by 2 with a homography: evaluated in original
    pixels, the result equals the unscaled evaluation."""
    samples = _samples(PRED)
    for s in samples:
        for inst in (s.gt_instances, s.pred_instances):
            inst.bboxes = inst.bboxes * 2
        s.set_metainfo(dict(homography_matrix=np.diag([2., 2., 1.]),
                            img_shape=(480, 640)))
    metric = CocoMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    got = metric.evaluate(len(GT))
    ref, _ = _pycocotools(_reference_gt(), _reference_dets(PRED))
    assert got['coco/APs'] == pytest.approx(ref['APs'], abs=1e-6)
    assert got['coco/AP'] == pytest.approx(ref['AP'], abs=1e-6)


def test_metric_from_ann_file(tmp_path):
    import json
    gt = _reference_gt()
    del gt['info']
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(gt))
    samples = _samples(PRED)
    for i, s in enumerate(samples, 1):
        s.set_metainfo(dict(img_id=i))
    metric = CocoMetric(ann_file=str(path), classes=CLASSES)
    metric.process({}, samples)
    got = metric.evaluate(len(GT))
    ref, _ = _pycocotools(_reference_gt(), _reference_dets(PRED))
    assert got['coco/AP'] == pytest.approx(ref['AP'], abs=1e-6)
    bad = CocoMetric(ann_file=str(path), classes=('bus', 'car'))
    bad.process({}, samples)
    with pytest.raises(ValueError, match="'bus'"):
        bad.evaluate(len(GT))

