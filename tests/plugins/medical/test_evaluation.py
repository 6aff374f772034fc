"""FROC / CPM against hand-computed LUNA16 cases."""
import numpy as np
import pytest
import torch

from perception.registry import METRICS
from perception.structures import DataSample, make_instances
from perception_medical.evaluation import (
    FP_RATES,
    froc,
    merge_slice_detections,
    read_candidates,
    slice_boxes_to_detections,
    write_candidates,
)
from perception_medical.froc_metric import FROCMetric

LESIONS = {'s1': [(np.array([0.0, 0, 0]), 10.0)],
           's2': [(np.array([50.0, 0, 0]), 6.0)]}


def test_duplicate_hits_count_once_and_are_not_false_positives():
    cands = [('s1', 1, 0, 0, 0.9),    # hits s1's lesion
             ('s1', 2, 0, 0, 0.8),    # second hit: ignored
             ('s1', 30, 0, 0, 0.7),   # FP
             ('s2', 50, 2, 0, 0.6),   # hits s2's lesion (2 mm < 3 mm)
             ('s2', 0, 0, 0, 0.5),    # FP (s1's lesion is in another scan)
             ('s2', 50, 3.5, 0, 0.95)]  # 3.5 mm > radius 3: FP
    res = froc(cands, LESIONS, ['s1', 's2'])
    # curve: (0,0) (.5,0) (.5,.5) (1,.5) (1,1) (1.5,1)
    np.testing.assert_allclose(res.curve_fps, [0, .5, .5, 1, 1, 1.5])
    np.testing.assert_allclose(res.curve_sens, [0, 0, .5, .5, 1, 1])
    np.testing.assert_allclose(res.sensitivities, [0, 0, .5, 1, 1, 1, 1])
    assert res.cpm == pytest.approx(4.5 / 7)
    assert (res.n_detected, res.n_false_positives, res.n_lesions) == (2, 3, 2)


def test_interpolation_between_curve_points():
    # a TP and an FP at the same probability: one diagonal segment
    # from (0, 0) to (1 FP/scan, 1)
    res = froc([('s1', 0, 0, 0, 0.5), ('s1', 40, 0, 0, 0.5)],
               {'s1': LESIONS['s1']}, ['s1'])
    np.testing.assert_allclose(res.sensitivities,
                               [0.125, 0.25, 0.5, 1, 1, 1, 1])
    assert res.cpm == pytest.approx(4.875 / 7)
    # two scans halve the FP rate: (0, 0) -> (0.5, 1)
    res = froc([('s1', 0, 0, 0, 0.5), ('s1', 40, 0, 0, 0.5)],
               {'s1': LESIONS['s1']}, ['s1', 'empty'])
    np.testing.assert_allclose(res.sensitivities[:3], [0.25, 0.5, 1.0])


def test_no_predictions_and_no_false_positives():
    res = froc([], LESIONS, ['s1', 's2'])
    np.testing.assert_array_equal(res.sensitivities, np.zeros(7))
    assert res.cpm == 0.0
    # only true positives: full sensitivity at every FP rate
    res = froc([('s1', 0, 0, 0, 0.3)], LESIONS, ['s1', 's2'])
    np.testing.assert_allclose(res.sensitivities, np.full(7, 0.5))


def test_no_lesions_is_undefined_not_zero():
    res = froc([('s1', 0, 0, 0, 0.3)], {}, ['s1'])
    assert np.isnan(res.cpm) and np.isnan(res.sensitivities).all()
    assert res.n_false_positives == 1
    with pytest.raises(ValueError, match='not among the evaluated scans'):
        froc([('s9', 0, 0, 0, 0.3)], {}, ['s1'])


def test_excluded_findings_neither_reward_nor_penalise():
    excluded = {'s1': [(np.array([30.0, 0, 0]), 8.0)]}
    cands = [('s1', 30, 1, 0, 0.9), ('s1', 0, 0, 0, 0.4)]
    res = froc(cands, {'s1': LESIONS['s1']}, ['s1'], excluded)
    assert res.n_false_positives == 0 and res.n_detected == 1
    assert res.cpm == pytest.approx(1.0)


def test_candidates_csv_round_trip(tmp_path):
    cands = [('1.2.3', 1.5, -2.0, 3.25, 0.75)]
    write_candidates(str(tmp_path / 'c.csv'), cands)
    assert read_candidates(str(tmp_path / 'c.csv')) == cands


def test_candidates_csv_with_an_empty_series_uid_names_the_row(tmp_path):
    from perception_medical.annotations import AnnotationError
    path = tmp_path / 'c.csv'
    path.write_text('seriesuid,coordX,coordY,coordZ,probability\n'
                    '1.2.3,1,2,3,0.5\n  ,1,2,3,0.5\n')
    with pytest.raises(AnnotationError, match=r'c\.csv: row 3, column '
                       r"seriesuid: empty; write the series' "
                       'SeriesInstanceUID or delete the row'):
        read_candidates(str(path))


def test_slice_boxes_merge_into_3d_candidates():
    affine = np.eye(4)
    affine[:3, :3] = [[0, 0, 1], [0, 1, 0], [2, 0, 0]]  # z spacing 2 mm
    dets = []
    # the same lesion on slices 4, 5, 6 (box centre pixel (20, 10))
    for k, score in ((4, 0.6), (5, 0.9), (6, 0.7)):
        dets += slice_boxes_to_detections(
            's1', k, affine, [[16.5, 6.5, 24.5, 14.5]], [score])
    dets += slice_boxes_to_detections('s1', 5, affine,
                                      [[40.5, 40.5, 44.5, 44.5]], [0.2])
    assert dets[1][3] == pytest.approx(4.0)  # radius mm
    np.testing.assert_allclose(dets[1][1], [20, 10, 10])  # x, y, z LPS
    merged = merge_slice_detections(dets, merge_mm=5.0)
    assert len(merged) == 2
    uid, x, y, z, prob = merged[0]
    assert prob == 0.9 and (x, y) == (20, 10)
    assert z == pytest.approx((8 * 0.6 + 10 * 0.9 + 12 * 0.7) / 2.2)
    assert merged[1][1:4] == (42.0, 42.0, 10.0)


def _sample(uid, k, affine, boxes, scores):
    s = DataSample()
    s.set_metainfo(dict(series_uid=uid, slice_index=k, affine=affine))
    s.pred_instances = make_instances(np.array(boxes, np.float32).reshape(
        -1, 4), np.zeros(len(scores), np.int64), scores=scores)
    return s


def test_metric_from_slice_predictions(tmp_path):
    ann = tmp_path / 'annotations.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                   's1,20,10,10,8\n' 's2,0,0,0,6\n')
    metric = METRICS.build(dict(type='FROCMetric', ann_file=str(ann)))
    affine = np.eye(4)
    affine[:3, :3] = [[0, 0, 1], [0, 1, 0], [2, 0, 0]]
    samples = [_sample('s1', k, affine, [[16.5, 6.5, 24.5, 14.5]],
                       torch.tensor([p])) for k, p in ((4, .6), (5, .9))]
    samples.append(_sample('s1', 6, affine, [[60, 60, 64, 64]],
                           torch.tensor([.95])))  # FP on s1
    samples.append(_sample('s2', 0, affine, np.zeros((0, 4)),
                           torch.zeros(0)))  # s2 seen, nothing found
    metric.process({}, [s.to_dict() for s in samples])
    out = metric.evaluate(len(samples))
    # s1 lesion hit (0.9), one FP (0.95) over 2 scans, s2 lesion missed:
    # curve (0,0) (.5,0) (.5,.5)
    assert out['froc/sens@0.25'] == 0.0
    assert out['froc/sens@0.5'] == 0.5 and out['froc/sens@8'] == 0.5
    assert out['froc/cpm'] == pytest.approx(2.5 / 7)
    assert (out['froc/lesions'], out['froc/scans'],
            out['froc/false_positives']) == (2, 2, 1)
    assert set(FP_RATES) == {0.125, 0.25, 0.5, 1, 2, 4, 8}


def test_metric_from_3d_candidates(tmp_path):
    ann = tmp_path / 'a.csv'
    ann.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\ns1,0,0,0,10\n')
    metric = FROCMetric(ann_file=str(ann))
    metric.process({}, [dict(series_uid='s1', pred_candidates=dict(
        points=np.array([[1.0, 0, 0], [40, 0, 0]]),
        scores=np.array([0.8, 0.9])))])
    out = metric.evaluate(1)
    np.testing.assert_allclose([out[f'froc/sens@{f:g}'] for f in FP_RATES],
                               [0, 0, 0, 1, 1, 1, 1])


def test_metric_excluded_file_with_unknown_diameter(tmp_path):
    ann, exc = tmp_path / 'a.csv', tmp_path / 'x.csv'
    header = 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'
    ann.write_text(header + 's1,0,0,0,10\n')
    exc.write_text(header + 's1,40,0,0,-1\n')  # LUNA16: -1 means 10 mm
    metric = FROCMetric(ann_file=str(ann), exclude_file=str(exc))
    metric.process({}, [dict(series_uid='s1', pred_candidates=dict(
        points=np.array([[1.0, 0, 0], [44, 0, 0], [46, 0, 0]]),
        scores=np.array([0.8, 0.9, 0.7])))])
    out = metric.evaluate(1)
    # 4 mm from the excluded finding: ignored; 6 mm: a false positive
    assert out['froc/false_positives'] == 1
    with pytest.raises(ValueError, match='diameter_mm must be > 0'):
        FROCMetric(ann_file=str(exc))
