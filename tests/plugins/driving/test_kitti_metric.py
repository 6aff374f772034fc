"""KittiMetric: KITTI's 2D AP (40 recall points, easy/moderate/hard) on
hand-computed cases, on a fixed case scored by the object devkit's own
``evaluate_object`` (2D part, compiled from the C++ source), and end to end
from a KITTI folder through KittiDataset and a resizing pipeline.

Cases are written in KITTI's terms: ground truth ``(type, truncated,
occluded, box)`` and detections ``(type, box, score)``, boxes as in the
label files (left, top, right, bottom: first and last pixel).
"""
import numpy as np
import pytest
import torch
from PIL import Image

import perception_driving
from perception.data.boxes import inclusive_to_xyxy
from perception.registry import DATASETS, METRICS
from perception.structures import DRIVING_CLASSES, DataSample, make_instances
from perception_driving.evaluation import evaluate_kitti, thresholds_for_recall

perception_driving.register()

#: KITTI type -> our taxonomy (DontCare: a class-agnostic region, -1)
TAXONOMY = {'Car': 'car', 'Van': 'car', 'Pedestrian': 'pedestrian',
            'Cyclist': 'rider'}


def to_samples(gt, det, names=DRIVING_CLASSES, type_map=TAXONOMY,
               scale: float = 1.0) -> list[DataSample]:
    """Samples as a detector's ``predict`` returns them: ground truth on
    the (resized by ``scale``) model input, predictions in source pixels."""
    samples = []
    for g, d in zip(gt, det):
        labels = [-1 if t == 'DontCare' else names.index(type_map.get(t, t))
                  for t, *_ in g]
        boxes = inclusive_to_xyxy([box for *_, box in g]).reshape(-1, 4)
        sample = DataSample(metainfo=dict(
            homography_matrix=np.diag([scale, scale, 1.0]).astype(
                np.float32)))
        instances = make_instances(boxes * scale, labels,
                                   [t == 'DontCare' for t, *_ in g])
        instances.truncated = torch.tensor([tr for _, tr, _, _ in g],
                                           dtype=torch.float32)
        instances.occluded = torch.tensor([occ for _, _, occ, _ in g],
                                          dtype=torch.float32)
        sample.gt_instances = instances
        sample.pred_instances = make_instances(
            inclusive_to_xyxy([box for _, box, _ in d]).reshape(-1, 4),
            [names.index(type_map.get(t, t)) for t, _, _ in d],
            scores=[s for *_, s in d])
        samples.append(sample)
    return samples


def kitti_ap(gt, det, **kwargs) -> dict:
    metric = METRICS.build(dict(type='KittiMetric', **kwargs))
    metric.dataset_meta = dict(classes=DRIVING_CLASSES)
    metric.process({}, to_samples(gt, det))
    return metric.evaluate(len(gt))


def cars(n_images: int, height: float = 50.0, top: float = 100.0,
         occluded: int = 0):
    """Two cars per image, side by side."""
    return [[('Car', 0.0, occluded,
              [20.0 + 200 * k, top, 140.0 + 200 * k, top + height])
             for k in range(2)] for _ in range(n_images)]


def detect(gt, score=lambda i, k: 0.5 + 0.01 * i + 0.001 * k):
    """A perfect detection of every non-DontCare box."""
    return [[(t, box, score(i, k)) for k, (t, _, _, box) in enumerate(g)
             if t != 'DontCare'] for i, g in enumerate(gt)]


def test_perfect_detections_give_ap_one():
    gt = cars(40)  # 80 cars: enough true positives for all 41 thresholds
    out = kitti_ap(gt, detect(gt))
    for level in ('easy', 'moderate', 'hard'):
        assert out[f'kitti/AP_car_{level}'] == pytest.approx(1.0)
        assert out[f'kitti/mAP_{level}'] == pytest.approx(1.0)
    assert 'kitti/AP_pedestrian_easy' not in out  # no gt, no detections


def test_few_objects_follow_the_devkit():
    """The devkit sets one threshold per true positive while there are
    fewer than 41, and averages recall points 1..40 of the threshold
    index: 40 perfect detections give 39/40, a single one 0."""
    gt = [[('Car', 0.0, 0, [20.0, 100.0, 140.0, 150.0])] for _ in range(40)]
    assert kitti_ap(gt, detect(gt))['kitti/AP_car_easy'] == pytest.approx(
        39 / 40)
    assert kitti_ap(gt[:1], detect(gt[:1]))['kitti/AP_car_easy'] == 0.0
    assert len(thresholds_for_recall([0.9] * 80, 80)) == 41


def test_missed_moderate_boxes():
    easy = cars(40)
    # 80 more cars, 30 px high and partly occluded: moderate and hard only
    moderate = cars(40, height=30.0, top=200.0, occluded=1)
    gt = [a + b for a, b in zip(easy, moderate)]
    out = kitti_ap(gt, detect(easy))  # only the easy ones found
    assert out['kitti/AP_car_easy'] == pytest.approx(1.0)
    # recall reaches 1/2 at precision 1: recall points 1/40 .. 20/40
    assert out['kitti/AP_car_moderate'] == pytest.approx(0.5)
    assert out['kitti/AP_car_hard'] == pytest.approx(0.5)


def test_dontcare_region_absorbs_a_false_positive():
    gt = cars(40)
    dets = detect(gt)
    region = [500.0, 10.0, 600.0, 110.0]
    for i in range(0, 40, 2):  # a confident car detection inside it
        gt[i] = gt[i] + [('DontCare', -1.0, -1, region)]
        dets[i] = dets[i] + [('Car', [505.0, 15.0, 595.0, 105.0], 0.99)]
    assert kitti_ap(gt, dets)['kitti/AP_car_easy'] == pytest.approx(1.0)
    no_region = [[g for g in img if g[0] != 'DontCare'] for img in gt]
    # the devkit on the same files: 0.8
    assert kitti_ap(no_region, dets)['kitti/AP_car_easy'] == pytest.approx(
        0.8)


def test_too_small_box_not_counted_in_easy():
    gt = cars(40)
    dets = detect(gt)
    # a 30 px car nobody found, and a 30 px false alarm scored highest
    gt[0] = gt[0] + [('Car', 0.0, 0, [600.0, 100.0, 700.0, 130.0])]
    dets[1] = dets[1] + [('Car', [600.0, 100.0, 700.0, 130.0], 0.99)]
    out = kitti_ap(gt, dets)
    assert out['kitti/AP_car_easy'] == pytest.approx(1.0)
    # the devkit on the same files: 80 / 81
    assert out['kitti/AP_car_moderate'] == pytest.approx(80 / 81)


def test_occlusion_and_truncation_set_the_level():
    gt = cars(40)
    gt[0][0] = ('Car', 0.2, 0, gt[0][0][3])  # truncated beyond easy
    gt[1][0] = ('Car', 0.0, 2, gt[1][0][3])  # largely occluded: hard only
    dets = [[d for k, d in enumerate(img) if not (i < 2 and k == 0)]
            for i, img in enumerate(detect(gt))]
    out = kitti_ap(gt, dets)
    assert out['kitti/AP_car_easy'] == pytest.approx(1.0)
    assert out['kitti/AP_car_hard'] < out['kitti/AP_car_easy']


def test_ignore_flags_are_neighbours_and_back_mapping():
    """A flagged box of the class (dataset filters) neither counts nor
    makes its detection a false positive; ground truth on a resized input
    maps back to source pixels."""
    gt = cars(40)
    dets = detect(gt)
    samples = to_samples(gt, dets, scale=0.5)
    samples[0].gt_instances.ignore_flags[0] = True
    metric = METRICS.build(dict(type='KittiMetric'))
    metric.dataset_meta = dict(classes=DRIVING_CLASSES)
    metric.process({}, samples)
    assert metric.evaluate(40)['kitti/AP_car_easy'] == pytest.approx(1.0)
    # predictions on the model input, mapped back by the metric
    samples = to_samples(gt, dets, scale=0.5)
    for s in samples:
        s.pred_instances.bboxes = s.pred_instances.bboxes * 0.5
    metric = METRICS.build(dict(type='KittiMetric', pred_in_source=False))
    metric.dataset_meta = dict(classes=DRIVING_CLASSES)
    metric.process({}, samples)
    assert metric.evaluate(40)['kitti/AP_car_easy'] == pytest.approx(1.0)


def known_case():
    """A fixed scene of 30 frames: cars of every level, pedestrians, vans
    (the devkit's neighbours of Car), DontCare regions, misplaced, missing,
    too-low and false detections."""
    gt, det = [], []
    for i in range(30):
        h = 20.0 + (i * 7) % 50
        car = [15.0 + i, 60.0, 135.0 + i, 60.0 + h]
        ped = [300.0, 40.0, 330.0, 62.0 + (i * 5) % 50]
        g = [('Car', [0.0, 0.2, 0.4][i % 3], i % 4, car),
             ('Car', 0.0, 0, [600.0, 150.0, 700.0, 200.0 + i % 3]),
             ('Pedestrian', 0.0, i % 2, ped),
             ('DontCare', -1.0, -1, [850.0, 0.0, 950.0, 100.0])]
        if i % 2:
            g.append(('Van', 0.0, 0, [700.0, 50.0, 800.0, 100.0]))
        d = [('Car', [car[0] + i % 5, car[1], car[2] + i % 5, car[3]],
              0.5 + (i % 10) / 20)]
        if i % 6:
            d.append(('Car', [600.0 + i % 9, 150.0, 700.0, 200.0],
                      0.3 + (i % 7) / 10))
        if i % 3 == 0:
            d.append(('Pedestrian', [301.0, 41.0, 331.0, ped[3]],
                      (i % 7) / 7 + 0.01))
        if i % 4 == 0:
            d.append(('Car', [400.0, 100.0, 470.0, 150.0], 0.95))
        if i % 2 == 0:
            d.append(('Car', [860.0, 10.0, 940.0, 90.0], 0.99))
        if i % 5 == 0:
            d.append(('Car', [701.0, 51.0, 799.0, 99.0], 0.8))
        if i % 7 == 0:
            d.append(('Pedestrian', [605.0, 160.0, 640.0, 180.0], 0.97))
        gt.append(g)
        det.append(d)
    return gt, det


#: the devkit's evaluate_object (2D, R40) on known_case(): Car, Pedestrian
DEVKIT_KNOWN_CASE = {
    'AP_Car_easy': 0.4391891892, 'AP_Car_moderate': 0.6467391304,
    'AP_Car_hard': 0.7232142857, 'AP_Pedestrian_easy': 0.05,
    'AP_Pedestrian_moderate': 0.2, 'AP_Pedestrian_hard': 0.2}


def test_known_case_matches_the_devkit():
    gt, det = known_case()
    names = ('Car', 'Pedestrian', 'Cyclist', 'Van')
    images = []
    for g, d in zip(gt, det):
        images.append(dict(
            gt_bboxes=np.array([b for *_, b in g]),
            gt_labels=np.array([-1 if t == 'DontCare' else names.index(t)
                                for t, *_ in g]),
            gt_ignore=np.zeros(len(g), bool),
            gt_truncated=np.array([tr for _, tr, _, _ in g]),
            gt_occluded=np.array([o for _, _, o, _ in g], float),
            pred_bboxes=np.array([b for _, b, _ in d]),
            pred_labels=np.array([names.index(t) for t, _, _ in d]),
            scores=np.array([s for *_, s in d])))
    out = evaluate_kitti(images, names, eval_classes=['Car', 'Pedestrian'])
    for key, want in DEVKIT_KNOWN_CASE.items():
        assert out[key] == pytest.approx(want, abs=1e-9), key


def test_kitti_folder_end_to_end(tmp_path):
    """KittiDataset carries occlusion and truncation into gt_instances
    through a resizing pipeline; a perfect detector scores 1."""
    root = tmp_path / 'training'
    (root / 'image_2').mkdir(parents=True)
    (root / 'label_2').mkdir()
    for i in range(20):
        Image.new('RGB', (640, 192)).save(root / 'image_2' / f'{i:06d}.png')
        lines = [f'Car 0.00 0 0.00 {10 + 150 * k:.2f} 50.00 '
                 f'{120 + 150 * k:.2f} {99.5 + k:.2f} 1.5 1.6 3.9 1 1 10 0'
                 for k in range(4)]
        lines.append('Car 0.45 2 0.00 10.00 120.00 90.00 160.00 '
                     '1.5 1.6 3.9 1 1 10 0')
        lines.append('DontCare -1 -1 -10 600.00 0.00 639.00 40.00 '
                     '-1 -1 -1 -1000 -1000 -1000 -10')
        (root / 'label_2' / f'{i:06d}.txt').write_text('\n'.join(lines))
    dataset = DATASETS.build(dict(
        type='KittiDataset', data_root=str(root), calib_dir=None,
        serialize_data=False, test_mode=True,
        pipeline=[dict(type='LoadImage'),
                  dict(type='Resize', scale=(320, 96), keep_ratio=True),
                  dict(type='PackInputs')]))
    samples = []
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        gt = sample.gt_instances
        assert gt.occluded[-2].item() == 2.0
        assert gt.truncated[-2].item() == pytest.approx(0.45)
        assert gt.labels[-1] == -1 and torch.isnan(gt.occluded[-1])
        keep = gt.labels >= 0
        sample.pred_instances = make_instances(
            torch.from_numpy(_to_source(sample, gt.bboxes[keep])),
            gt.labels[keep], scores=torch.linspace(0.9, 0.5, int(keep.sum())))
        samples.append(sample)
    metric = METRICS.build(dict(type='KittiMetric'))
    metric.dataset_meta = dataset.metainfo
    metric.process({}, samples)
    out = metric.evaluate(len(samples))
    assert out['kitti/AP_car_easy'] == pytest.approx(1.0)
    assert out['kitti/AP_car_hard'] == pytest.approx(1.0)


def _to_source(sample, boxes):
    from perception.data import boxes_to_source
    return boxes_to_source(sample, boxes)
