"""Per-image detection recall / precision / F1 on a constructed case
(matches, a wrong-class box, a low score, an ignore region, an image
without objects), and its subgroup split by a frame attribute."""
from __future__ import annotations

import numpy as np
import pytest

from perception.evaluation import PerImageDetectionMetric, SubgroupMetric
from perception.evaluation.per_image import box_iou
from perception.structures import DataSample, make_instances


def _sample(gt, gt_labels, ignore, pred, labels, scores, **meta):
    s = DataSample(metainfo=dict(img_shape=(100, 100), ori_shape=(100, 100),
                                 **meta))
    s.gt_instances = make_instances(np.array(gt, float).reshape(-1, 4),
                                    gt_labels, ignore)
    s.pred_instances = make_instances(np.array(pred, float).reshape(-1, 4),
                                      labels, scores=scores)
    return s


def _case(**meta):
    one = _sample(
        gt=[[0, 0, 10, 10], [20, 20, 40, 40], [60, 60, 90, 90]],
        gt_labels=[0, 1, 0], ignore=[False, False, True],
        pred=[[0, 0, 10, 9],      # car, IoU 0.9: hit
              [20, 20, 40, 40],   # class 0 on the class-1 box: false pos.
              [50, 0, 60, 10],    # score below the threshold: not counted
              [60, 60, 90, 90]],  # on the ignore region: neither
        labels=[0, 0, 0, 0], scores=[0.9, 0.8, 0.1, 0.7], **meta)
    empty = _sample(gt=[], gt_labels=[], ignore=[], pred=[[5, 5, 15, 15]],
                    labels=[1], scores=[0.95], **meta)
    return [one, empty]


def test_per_image_recall_precision_f1():
    metric = PerImageDetectionMetric(score_thr=0.3, iou_thr=0.5)
    metric.process({}, [s.to_dict() for s in _case()])
    result = metric.evaluate(2)
    # image 1: TP 1 (car), FP 1 (wrong class), FN 1 (the class-1 box)
    assert result['det/recall'] == pytest.approx(0.5)      # image 1 only
    assert result['det/precision'] == pytest.approx(0.25)  # (1/2 + 0) / 2
    assert result['det/f1'] == pytest.approx(0.5)
    assert result['det/images'] == 2
    assert box_iou([[0, 0, 10, 10]], [[0, 0, 10, 9], [20, 20, 30, 30]]
                   ) == pytest.approx(np.array([[0.9, 0.0]]))


def test_subgroups_of_a_per_image_metric():
    day = _case(timeofday='daytime')
    night = _case(timeofday='night')[1:] * 3  # only false positives
    metric = SubgroupMetric(dict(type='PerImageDetectionMetric'),
                            fields=['timeofday'], key='precision',
                            min_group_size=2, n_boot=50)
    metric.process({}, [s.to_dict() for s in day + night])
    result = metric.evaluate(5)
    assert result['subgroup/timeofday/daytime'] == pytest.approx(0.25)
    assert result['subgroup/timeofday/night'] == 0.0
    assert metric.report.worst == {'timeofday': 'night'}
    assert result['det/precision'] == pytest.approx(0.5 / 5)
