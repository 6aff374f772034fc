"""The merge rule on constructed cases: which slice boxes join a finding,
and the finding's centre, diameter, score and slice range by hand."""
from __future__ import annotations

import numpy as np
import pytest

from perception_medical.lesions.findings import SliceDetection, linked, merge_detections

# slices 3 mm apart along LPS z, rows along y (0.5 mm), columns along x (0.5 mm)
AFFINE = np.array([[0, 0, 0.5, -10.0], [0, 0.5, 0, 20.0], [3.0, 0, 0, 100.0],
                   [0, 0, 0, 1]])


def det(k, box, score=0.9, label=0):
    return SliceDetection(k, np.array(box, float), score, label)


def test_constructed_case():
    dets = [
        # lesion A on slices 4, 5, 6: a 10 px section between two 6 px ones
        det(4, [18, 18, 24, 24], 0.6), det(5, [16, 16, 26, 26], 0.9),
        det(6, [18, 18, 24, 24], 0.6),
        # lesion B: slices 10 and 12, slice 11 missed (max_gap=1 bridges it)
        det(10, [50, 10, 56, 16], 0.8), det(12, [51, 11, 57, 17], 0.7),
        # C: overlaps A's boxes on slice 5 itself: never linked on one slice
        det(5, [24, 16, 34, 26], 0.5),
        # D: on slice 7 beside A but no overlap: its own finding
        det(7, [40, 40, 44, 44], 0.4),
        # E: a small section inside B's box two slices on: centre inside
        det(14, [52, 12, 54, 14], 0.3),
    ]
    findings = merge_detections(dets, AFFINE, 'uid', ('nodule', ))
    assert [f.score for f in findings] == [0.9, 0.8, 0.5, 0.4]
    a, b, c, d = findings
    assert a.slice_range == [4, 6] and len(a.slices) == 3
    # centre: the score x area weighted mean of the box centres; by symmetry
    # the middle slice's centre (21, 21) px -> index (5, 20.5, 20.5)
    np.testing.assert_allclose(a.center_lps, [-10 + 0.5 * 20.5, 20 + 0.5 * 20.5,
                                              100 + 3 * 5.0])
    assert a.diameter_mm == pytest.approx(5.0)  # 10 px x 0.5 mm
    assert a.class_name == 'nodule' and a.series_uid == 'uid'
    assert b.slice_range == [10, 14] and len(b.slices) == 3  # E joined via gap 1
    w = np.array([0.8 * 9, 0.7 * 9, 0.3 * 1])  # score x area (mm^2)
    z = (w * [10, 12, 14]).sum() / w.sum()
    np.testing.assert_allclose(b.center_lps[2], 100 + 3 * z)
    assert c.slice_range == [5, 5] and d.slice_range == [7, 7]


def test_linking_rule():
    a = det(5, [0, 0, 10, 10])
    assert linked(a, det(6, [2, 2, 12, 12]))            # IoU 0.47
    assert not linked(a, det(6, [8, 8, 18, 18]))        # IoU 0.02, centres outside
    assert linked(a, det(6, [4, 4, 6, 6]))              # centre inside
    assert not linked(a, det(5, [0, 0, 10, 10]))        # same slice
    assert not linked(a, det(6, [0, 0, 10, 10], label=1))
    assert linked(a, det(7, [0, 0, 10, 10]))            # one slice missed
    assert not linked(a, det(7, [0, 0, 10, 10]), max_gap=0)
    assert not linked(a, det(8, [0, 0, 10, 10]))        # two missed
    assert merge_detections([], AFFINE, 'uid') == []
