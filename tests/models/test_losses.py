"""Losses of the detection head against hand-computed values."""
import math

import pytest
import torch

import perception.models.losses  # noqa: F401  (registers the losses)
from perception.models.losses.utils import weight_reduce_loss
from perception.registry import MODELS

LN2 = math.log(2)
# p = 0.75 against a soft target 0.5: -(0.5 ln 0.75 + 0.5 ln 0.25)
BCE_75_50 = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))


def logits(*probs):
    return torch.logit(torch.tensor([list(probs)]))


def test_quality_focal_loss_hand_values():
    loss = MODELS.build(dict(type='QualityFocalLoss', beta=2.0,
                             reduction='none'))
    # p = 0.5 with target 1 and 0: ln 2 * 0.5**2 each
    values = loss(logits(0.5, 0.5), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(values, torch.full((1, 2), LN2 * 0.25))
    value = loss(logits(0.75), torch.tensor([[0.5]]))
    assert value.item() == pytest.approx(BCE_75_50 * 0.25**2, rel=1e-5)
    # the exact target costs nothing but the entropy, scaled by 0
    assert loss(logits(0.3), torch.tensor([[0.3]])).item() == pytest.approx(
        0, abs=1e-7)


def test_varifocal_loss_hand_values():
    loss = MODELS.build(dict(type='VarifocalLoss', alpha=0.75, gamma=2.0,
                             reduction='none'))
    # positive (q = 0.5): BCE times q
    assert loss(logits(0.75), torch.tensor([[0.5]])).item() == pytest.approx(
        BCE_75_50 * 0.5, rel=1e-5)
    # negative: -ln(1 - p) times alpha p**gamma
    assert loss(logits(0.75), torch.tensor([[0.0]])).item() == pytest.approx(
        -math.log(0.25) * 0.75 * 0.75**2, rel=1e-5)


def test_iou_losses_hand_values():
    pred = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.]])
    target = torch.tensor([[5., 5., 15., 15.], [0., 0., 10., 10.]])
    giou = 25 / 175 - 50 / 225
    loss = MODELS.build(dict(type='GIoULoss', reduction='none'))
    torch.testing.assert_close(loss(pred, target),
                               torch.tensor([1 - giou, 0.0]))
    ciou = MODELS.build(dict(type='CIoULoss', reduction='none'))
    torch.testing.assert_close(ciou(pred, target),
                               torch.tensor([1 - (25 / 175 - 50 / 450), 0.0]),
                               atol=1e-5, rtol=1e-5)
    weighted = MODELS.build(dict(type='GIoULoss', loss_weight=2.0))
    value = weighted(pred, target, weight=torch.tensor([0.5, 1.0]),
                     avg_factor=4.0)
    assert value.item() == pytest.approx(2.0 * 0.5 * (1 - giou) / 4.0,
                                         rel=1e-5)


def test_distribution_focal_loss_hand_value():
    loss = MODELS.build(dict(type='DistributionFocalLoss', reduction='none'))
    pred = torch.log(torch.tensor([[1.0, 2.0, 3.0, 1.0]]))  # p = [1,2,3,1]/7
    value = loss(pred, torch.tensor([1.25]))
    expected = -(0.75 * math.log(2 / 7) + 0.25 * math.log(3 / 7))
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # integer target: all mass on one bin
    assert loss(pred, torch.tensor([2.0])).item() == pytest.approx(
        -math.log(3 / 7), rel=1e-5)


def test_weight_reduce_loss():
    loss = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert weight_reduce_loss(loss).item() == 2.5
    assert weight_reduce_loss(loss, reduction='sum').item() == 10
    # per-row weights broadcast over the columns
    assert weight_reduce_loss(loss, torch.tensor([1.0, 0.0]),
                              avg_factor=2.0).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match='reduction'):
        weight_reduce_loss(loss, reduction='avg')


def test_losses_have_gradients():
    pred = torch.zeros(3, 4, requires_grad=True)
    MODELS.build(dict(type='QualityFocalLoss'))(
        pred, torch.tensor([[0.9, 0, 0, 0]] * 3)).backward()
    assert pred.grad[:, 0].lt(0).all() and pred.grad[:, 1:].gt(0).all()
