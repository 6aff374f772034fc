"""Task modules of the detection head: overlaps, priors, the box coder and the
task-aligned assigner on hand-made cases."""
import math

import pytest
import torch

from perception.models.task_modules import (
    MlvlPointGenerator,
    TaskAlignedAssigner,
    bbox_overlaps,
)
from perception.registry import TASK_UTILS


def grid_priors(size=4, stride=8):
    """A size x size grid at one stride: centres 4, 12, 20, 28 for 4 x 8."""
    return MlvlPointGenerator([stride]).grid_priors([(size, size)])[0]


def boxes_around(priors, half=8.0):
    """A 2 half x 2 half box centred on each prior."""
    xy = priors[:, :2]
    return torch.cat([xy - half, xy + half], dim=1)


def test_overlaps_hand_values():
    a = torch.tensor([[0., 0., 10., 10.]])
    b = torch.tensor([[5., 5., 15., 15.], [20., 20., 30., 30.]])
    iou = bbox_overlaps(a, b)
    assert iou.shape == (1, 2)
    assert iou[0, 0].item() == pytest.approx(25 / 175)
    assert iou[0, 1].item() == 0
    giou = bbox_overlaps(a, b[:1], mode='giou', is_aligned=True)
    assert giou.item() == pytest.approx(25 / 175 - 50 / 225)
    # same aspect ratio: CIoU = IoU - centre distance^2 / enclosing diagonal^2
    ciou = bbox_overlaps(a, b[:1], mode='ciou', is_aligned=True)
    assert ciou.item() == pytest.approx(25 / 175 - 50 / 450, abs=1e-6)
    # a wide and a tall box of equal centre: the aspect term only
    w, t = torch.tensor([[0., 4., 8., 6.]]), torch.tensor([[3., 1., 5., 9.]])
    v = 4 / math.pi**2 * (math.atan(2 / 8) - math.atan(8 / 2))**2
    iou_wt = 4 / 28
    alpha = v / (1 - iou_wt + v)
    assert bbox_overlaps(w, t, 'ciou', True).item() == pytest.approx(
        iou_wt - alpha * v, abs=1e-5)


def test_point_generator_pixel_edge_centres():
    gen = TASK_UTILS.build(dict(type='MlvlPointGenerator', strides=[8, 16]))
    level0, level1 = gen.grid_priors([(2, 3), (1, 2)])
    assert level0.shape == (6, 4)
    # cell (i, j) at stride s: ((j + 0.5) s, (i + 0.5) s), row-major
    assert level0[:, :2].tolist() == [[4, 4], [12, 4], [20, 4],
                                      [4, 12], [12, 12], [20, 12]]
    assert (level0[:, 2:] == 8).all()
    assert level1.tolist() == [[8, 8, 16, 16], [24, 8, 16, 16]]
    with pytest.raises(ValueError, match='2 strides'):
        gen.grid_priors([(2, 3)])


def test_coder_round_trip_and_clip():
    coder = TASK_UTILS.build(dict(type='DistancePointBBoxCoder'))
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(50, 2, generator=gen) * 100
    sides = torch.rand(50, 4, generator=gen) * 30
    boxes = torch.cat([points - sides[:, :2], points + sides[:, 2:]], dim=1)
    dist = coder.encode(points, boxes)
    torch.testing.assert_close(dist, sides)
    torch.testing.assert_close(coder.decode(points, dist), boxes)
    # batched distances against shared priors
    batched = coder.decode(points, dist.expand(3, -1, -1))
    torch.testing.assert_close(batched[2], boxes)
    clipped = coder.decode(points, dist, max_shape=(60, 80))
    assert clipped[:, 0::2].max() <= 80 and clipped[:, 1::2].max() <= 60
    assert clipped.min() >= 0
    capped = coder.encode(points, boxes, max_dis=5.0)
    assert capped.max() <= 5.0 and capped.min() >= 0


def two_gt_case():
    """4 x 4 priors at stride 8 (centres 4..28); gt A covers the top-left
    quarter (priors 0, 1, 4, 5), gt B the bottom-right one (10, 11, 14, 15)."""
    priors = grid_priors()
    pred_boxes = boxes_around(priors)  # IoU 144 / 368 with either gt
    scores = torch.full((16, 2), 0.1)
    scores[[0, 1, 4, 5], 0] = torch.tensor([0.9, 0.8, 0.7, 0.6])
    scores[[10, 11, 14, 15], 1] = torch.tensor([0.3, 0.5, 0.9, 0.4])
    gt = torch.tensor([[0., 0., 16., 16.], [16., 16., 32., 32.]])
    return priors, pred_boxes, scores, gt, torch.tensor([0, 1])


def test_assigner_two_gts_known_positives():
    priors, pred_boxes, scores, gt, labels = two_gt_case()
    assigner = TASK_UTILS.build(dict(type='TaskAlignedAssigner', topk=2))
    result = assigner.assign(scores, pred_boxes, priors, gt, labels)
    expected = torch.zeros(16, dtype=torch.long)
    expected[[0, 1]] = 1
    expected[[14, 11]] = 2
    assert result.gt_inds.tolist() == expected.tolist()
    assert result.labels[[0, 1, 11, 14]].tolist() == [0, 0, 1, 1]
    assert (result.labels[expected == 0] == 2).all()  # background = C
    assert result.bboxes[1].tolist() == gt[0].tolist()
    assert result.bboxes[11].tolist() == gt[1].tolist()
    assert not result.ignore_mask.any()
    # soft targets: t / max_t * max_IoU over each gt's positives
    iou = 144 / 368
    assert result.scores[0].item() == pytest.approx(iou, rel=1e-5)
    assert result.scores[1].item() == pytest.approx(
        math.sqrt(0.8 / 0.9) * iou, rel=1e-5)
    assert result.scores[14].item() == pytest.approx(iou, rel=1e-5)
    assert result.scores[11].item() == pytest.approx(
        math.sqrt(0.5 / 0.9) * iou, rel=1e-5)
    assert (result.scores[expected == 0] == 0).all()


def test_assigner_prior_claimed_twice_goes_to_highest_iou():
    # the prior at (12, 12) lies inside both boxes and is each one's top-1
    priors = torch.tensor([[12., 12., 8., 8.]])
    gt = torch.tensor([[0., 0., 16., 16.], [8., 8., 32., 32.]])
    assigner = TaskAlignedAssigner(topk=1)
    for pred, winner in (([10., 10., 26., 26.], 2), ([0., 0., 14., 14.], 1)):
        result = assigner.assign(torch.full((1, 2), 0.5),
                                 torch.tensor([pred]), priors, gt,
                                 torch.tensor([0, 1]))
        assert result.gt_inds.tolist() == [winner]
        assert result.labels.tolist() == [winner - 1]
        assert result.bboxes[0].tolist() == gt[winner - 1].tolist()


def test_assigner_tiny_box_takes_its_nearest_prior():
    priors = grid_priors()
    tiny = torch.tensor([[13., 13., 17., 17.]])  # holds no centre
    result = TaskAlignedAssigner().assign(
        torch.full((16, 1), 0.5), boxes_around(priors), priors, tiny,
        torch.tensor([0]))
    assert result.pos_mask.sum() == 1
    assert result.gt_inds[5] == 1  # centre (12, 12), nearest to (15, 15)


def test_assigner_ignore_regions_neither_positive_nor_negative():
    priors, pred_boxes, scores, gt, labels = two_gt_case()
    # gt B becomes an ignore region; a second region [0, 16, 16, 32] covers
    # priors 8, 9, 12, 13; a third overlaps gt A's prior 5 only: a real
    # object's positive wins over an ignore region (DontCare regions often
    # overlap labelled objects), everything else it covers is ignored
    ignore = torch.tensor([[16., 16., 32., 32.], [0., 16., 16., 32.],
                           [8., 8., 14., 14.]])
    result = TaskAlignedAssigner(topk=4).assign(scores, pred_boxes, priors,
                                                gt[:1], labels[:1], ignore)
    ignored = [8, 9, 10, 11, 12, 13, 14, 15]
    assert sorted(result.ignore_mask.nonzero().squeeze(1).tolist()) == ignored
    assert sorted(result.pos_mask.nonzero().squeeze(1).tolist()) == [0, 1, 4,
                                                                     5]
    # with topk=3 prior 5 is not among A's positives: then it is ignored
    top3 = TaskAlignedAssigner(topk=3).assign(scores, pred_boxes, priors,
                                              gt[:1], labels[:1], ignore)
    assert top3.gt_inds[5] == -1 and top3.pos_mask.sum() == 3
    assert sorted(result.neg_mask.nonzero().squeeze(1).tolist()) == [2, 3, 6,
                                                                     7]
    assert (result.scores[ignored] == 0).all()


def test_assigner_empty_ground_truth_all_negative():
    priors = grid_priors()
    result = TaskAlignedAssigner().assign(
        torch.rand(16, 3), boxes_around(priors), priors,
        torch.zeros(0, 4), torch.zeros(0, dtype=torch.long),
        torch.zeros(0, 4))
    assert result.neg_mask.all() and result.num_gts == 0
    assert (result.labels == 3).all() and (result.scores == 0).all()
