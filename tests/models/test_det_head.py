"""The anchor-free detection head: shapes, losses (ignore regions, empty
ground truth), post-processing, ONNX-friendliness, and that it overfits a
fixed batch on its own."""
import warnings

import pytest
import torch
from torch import nn

from perception.models.heads import HeadLabelError, TALDetHead, postprocess_detections
from perception.models.task_modules import MlvlPointGenerator, bbox_overlaps
from perception.registry import MODELS
from perception.structures import DataSample, empty_instances, make_instances

SIZES = ((16, 16), (8, 8), (4, 4))  # a 128 x 128 input at strides 8, 16, 32
NUM_PRIORS = 256 + 64 + 16


def make_head(reg_max=0, **kwargs):
    torch.manual_seed(0)
    return TALDetHead(num_classes=3, in_channels=16, feat_channels=16,
                      reg_max=reg_max, **kwargs)


def random_feats(batch=2, channels=16, sizes=SIZES):
    gen = torch.Generator().manual_seed(1)
    return tuple(torch.randn(batch, channels, h, w, generator=gen)
                 for h, w in sizes)


def sample(boxes, labels, ignore_flags=None, shape=(128, 128)):
    data = DataSample(metainfo=dict(img_shape=shape, batch_input_shape=shape))
    data.gt_instances = (make_instances(boxes, labels, ignore_flags)
                         if len(boxes) else empty_instances())
    return data


def two_samples():
    return [sample([[10., 12., 60., 70.], [70., 20., 120., 50.]], [0, 2]),
            sample([[30., 30., 100., 90.]], [1])]


def flat(maps):
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.size(0), -1, m.size(1))
                      for m in maps], dim=1)


@pytest.mark.parametrize('reg_max', [0, 16])
def test_forward_shapes(reg_max):
    cls_scores, bbox_preds = make_head(reg_max)(random_feats())
    assert [tuple(c.shape) for c in cls_scores] == [(2, 3, h, w)
                                                    for h, w in SIZES]
    channels = 4 * reg_max if reg_max else 4
    assert [tuple(b.shape) for b in bbox_preds] == [(2, channels, h, w)
                                                    for h, w in SIZES]
    # the classifier starts at the prior probability 0.01
    assert torch.sigmoid(cls_scores[0]).mean().item() == pytest.approx(
        0.01, abs=2e-3)


@pytest.mark.parametrize('reg_max', [0, 16])
def test_loss_and_backward(reg_max):
    head = make_head(reg_max)
    losses = head.loss(random_feats(), two_samples())
    expected = {'loss_cls', 'loss_bbox'} | ({'loss_dfl'} if reg_max else set())
    assert set(losses) == expected
    assert all(v.dim() == 0 and torch.isfinite(v) and v > 0
               for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in head.parameters())


def test_per_level_batchnorm_variant():
    head = make_head(share_levels=False, norm_cfg=dict(type='BN'))
    assert len(head.cls_convs) == 3
    losses = head.loss(random_feats(), two_samples())
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())


def test_empty_ground_truth_all_negative_finite_loss():
    head = make_head(16)
    losses = head.loss(random_feats(), [sample([], []), sample([], [])])
    assert losses['loss_bbox'].item() == 0 and losses['loss_dfl'].item() == 0
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    sum(losses.values()).backward()  # every branch stays in the graph
    assert head.reg_preds[0].weight.grad is not None


def test_ignore_regions_are_neither_positive_nor_negative():
    head = make_head()
    feats = random_feats(batch=1)
    cls_scores, bbox_preds = [
        [t.detach().requires_grad_() for t in out] for out in head(feats)]
    # one object, one ignore region by flag and one DontCare by label -1;
    # the flagged region also covers part of the object
    boxes = [[8., 8., 56., 56.], [40., 40., 72., 72.], [80., 80., 128., 128.]]
    data = sample(boxes, [1, 0, -1], ignore_flags=[False, True, False])
    losses = head.loss_by_feat(cls_scores, bbox_preds, [data])
    sum(losses.values()).backward()
    cls_grad = flat([c.grad for c in cls_scores])[0]  # (N, C)
    box_grad = flat([b.grad for b in bbox_preds])[0]
    priors = torch.cat(MlvlPointGenerator([8, 16, 32]).grid_priors(SIZES))
    x, y = priors[:, 0], priors[:, 1]
    ignored = torch.zeros(NUM_PRIORS, dtype=torch.bool)
    for x1, y1, x2, y2 in boxes[1:]:
        ignored |= (x > x1) & (x < x2) & (y > y1) & (y < y2)
    # where the flagged region covers the object, the object's positives win
    positive = box_grad.abs().sum(1) > 0
    ignored &= ~positive
    assert ignored.sum() > 30
    assert (cls_grad[ignored] == 0).all()  # no classification loss at all
    assert (box_grad[ignored] == 0).all()  # never positive
    assert (cls_grad[~ignored].abs().sum(1) > 0).all()  # real negatives
    # the object keeps positives outside the ignore region
    assert (box_grad[~ignored].abs().sum(1) > 0).any()


def test_labels_out_of_range_is_a_user_error():
    with pytest.raises(HeadLabelError, match='num_classes=3'):
        make_head().loss(random_feats(1), [sample([[0., 0., 9., 9.]], [3])])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='in_channels'):
        TALDetHead(3, in_channels=[16, 32, 64])
    with pytest.raises(ValueError, match='test_cfg'):
        TALDetHead(3, 16, test_cfg=dict(nms_thr=0.5))
    with pytest.raises(ValueError, match='3 strides'):
        make_head()(random_feats()[:2])


def test_built_from_the_registry():
    head = MODELS.build(dict(type='TALDetHead', num_classes=2, in_channels=8,
                             feat_channels=8, test_cfg=dict(score_thr=0.3)))
    assert isinstance(head, TALDetHead)
    assert head.test_cfg['score_thr'] == 0.3
    assert head.test_cfg['max_per_img'] == 100


@pytest.mark.parametrize('reg_max', [0, 16])
def test_predict_raw_shapes_and_initial_boxes(reg_max):
    boxes, scores = make_head(reg_max).predict_raw(random_feats())
    assert boxes.shape == (2, NUM_PRIORS, 4)
    assert scores.shape == (2, NUM_PRIORS, 3)
    assert scores.min() >= 0 and scores.max() <= 1
    # untrained: boxes about each prior, a stride (reg_max 0) or 7.5 strides
    # (the mean of 16 bins) from each side
    priors = torch.cat(MlvlPointGenerator([8, 16, 32]).grid_priors(SIZES))
    stride = priors[:, 2:3]
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    assert ((centres - priors[:, :2]).abs() < stride / 4).all()
    width = (boxes[..., 2:3] - boxes[..., 0:1]) / stride
    expected = 2.0 if reg_max == 0 else 15.0
    assert ((width - expected).abs() < 0.25 * expected).all()


def test_bf16_autocast_keeps_boxes_in_float32():
    head = make_head()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        boxes, scores = head.predict_raw(random_feats())
        losses = head.loss(random_feats(), two_samples())
    assert boxes.dtype == scores.dtype == torch.float32
    assert all(torch.isfinite(v) for v in losses.values())


def test_postprocess_nms_class_aware_and_max_per_img():
    boxes = torch.tensor([[[0., 0., 10., 10.], [1., 0., 11., 10.],
                           [50., 50., 60., 60.], [-5., -5., 140., 20.]]])
    scores = torch.zeros(1, 4, 2)
    scores[0, 0, 0] = 0.9  # duplicates of one object
    scores[0, 1, 0] = 0.8
    scores[0, 1, 1] = 0.7  # same place, other class: kept
    scores[0, 2, 0] = 0.6
    scores[0, 3, 1] = 0.04  # below the threshold
    head = make_head()
    (result, ) = head.postprocess(boxes, scores, img_shapes=[(100, 128)])
    assert result.scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert result.labels.tolist() == [0, 1, 0]
    assert result.bboxes.dtype == torch.float32
    assert result.bboxes[1].tolist() == [1, 0, 11, 10]
    (top, ) = head.postprocess(boxes, scores, max_per_img=2)
    assert top.scores.tolist() == pytest.approx([0.9, 0.7])
    (none, ) = head.postprocess(boxes, scores, score_thr=0.95)
    assert none.bboxes.shape == (0, 4) and none.labels.dtype == torch.int64
    # boxes are clipped to the current image
    scores[0, 3, 1] = 0.5
    (clipped, ) = postprocess_detections(boxes, scores, img_shapes=[(100, 128)])
    assert clipped.bboxes[clipped.scores == 0.5].tolist() == [[0, 0, 128, 20]]


def test_predict_raw_exports_to_onnx_with_standard_ops(tmp_path):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')

    class Raw(nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def forward(self, p3, p4, p5):
            return self.head.predict_raw((p3, p4, p5))

    head = make_head(16).eval()
    path = tmp_path / 'head.onnx'
    names = ['p3', 'p4', 'p5']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            Raw(head), random_feats(), str(path), input_names=names,
            output_names=['boxes', 'scores'], dynamo=False, opset_version=17,
            dynamic_axes={n: {0: 'batch', 2: f'h{i}', 3: f'w{i}'}
                          for i, n in enumerate(names)})
    model = onnx.load(str(path))
    assert {node.domain for node in model.graph.node} <= {'', 'ai.onnx'}
    # another batch and size than traced: priors follow the shapes
    feats = random_feats(batch=1, sizes=((8, 12), (4, 6), (2, 3)))
    session = ort.InferenceSession(str(path))
    boxes, scores = session.run(None, {n: f.numpy()
                                       for n, f in zip(names, feats)})
    ref_boxes, ref_scores = head.predict_raw(feats)
    torch.testing.assert_close(torch.from_numpy(boxes), ref_boxes,
                               atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(scores), ref_scores,
                               atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------- overfitting
COLOURS = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.3], [0.2, 0.3, 1.0]])
OBJECTS = [([[10, 14, 50, 60], [70, 20, 120, 52], [40, 80, 90, 120]],
            [0, 1, 2]),
           ([[20, 30, 100, 90], [90, 96, 124, 124]], [1, 0])]


def conv(channels_in, channels_out):
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, 2, 1),
                         nn.ReLU())


class FrozenPyramid(nn.Module):
    """A tiny random conv stack: maps at strides 8, 16, 32."""

    def __init__(self, channels=32):
        super().__init__()
        self.stem = nn.Sequential(conv(3, 16), conv(16, 32),
                                  conv(32, channels))
        self.down1 = conv(channels, channels)
        self.down2 = conv(channels, channels)

    def forward(self, x):
        p3 = self.stem(x)
        p4 = self.down1(p3)
        return p3, p4, self.down2(p4)


def synthetic_batch():
    torch.manual_seed(0)
    images = torch.full((2, 3, 128, 128), 0.1)
    samples = []
    for index, (boxes, labels) in enumerate(OBJECTS):
        for (x1, y1, x2, y2), label in zip(boxes, labels):
            # shaded, so that a cell inside an object sees where it lies
            u = torch.linspace(0, 1, x2 - x1)[None, :]
            v = torch.linspace(0, 1, y2 - y1)[:, None]
            shade = 0.4 + 0.3 * u + 0.3 * v
            images[index, :, y1:y2, x1:x2] = COLOURS[label][:, None, None] * shade
        samples.append(sample(torch.tensor(boxes, dtype=torch.float32),
                              labels))
    with torch.no_grad():
        feats = FrozenPyramid().eval()(images)
    return feats, samples


def assert_overfits(head: TALDetHead, feats, samples,
                    one_per_object: bool) -> None:
    """200 AdamW steps on the fixed batch: the loss falls below a fifth of
    its start and every object is found (IoU > 0.7) above score 0.3; with
    ``one_per_object``, NMS leaves exactly one detection above 0.3 each
    (the scores are IoU-aware, so a DFL head's fall near its box IoU)."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=5e-3,
                                  weight_decay=0)
    history = []
    for _ in range(200):
        loss = sum(head.loss(feats, samples).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert sum(history[-10:]) / 10 < 0.2 * history[0]
    head.eval()
    with torch.no_grad():
        results = head.predict(feats, samples)
    for result, data in zip(results, samples):
        gt = data.gt_instances
        confident = result[result.scores > 0.3]
        for box, label in zip(gt.bboxes, gt.labels):
            same = confident[confident.labels == label]
            assert len(same), f'no detection of class {label}'
            assert bbox_overlaps(box[None], same.bboxes).max() > 0.7
        if one_per_object:   # no duplicate survives NMS among the confident
            assert len(confident) == len(gt.bboxes)


@pytest.mark.parametrize('reg_max', [0, 16])
def test_head_alone_overfits_a_fixed_batch(reg_max):
    feats, samples = synthetic_batch()
    torch.manual_seed(0)
    head = TALDetHead(num_classes=3, in_channels=32, feat_channels=32,
                      reg_max=reg_max)
    assert_overfits(head, feats, samples, one_per_object=True)


def test_depthwise_branches_cut_the_multiply_adds():
    from torch.utils.flop_counter import FlopCounterMode
    feats = random_feats(batch=1, channels=64)
    flops = {}
    for depthwise in (False, True):
        torch.manual_seed(0)
        head = TALDetHead(num_classes=3, in_channels=64, feat_channels=64,
                          use_depthwise=depthwise).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            cls_scores, bbox_preds = head(feats)
        flops[depthwise] = counter.get_total_flops()
        assert [tuple(m.shape) for m in cls_scores] == [
            (1, 3, h, w) for h, w in SIZES]
    # per unit 9 C + C^2 against 9 C^2 (C = 64): ~0.13, plus the 1x1 preds
    assert flops[True] < 0.2 * flops[False]
    convs = [m for m in head.cls_convs.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.groups, m.kernel_size) for m in convs] == [
        (64, (3, 3)), (1, (1, 1))] * 2


@pytest.mark.parametrize('norm', ['GN', 'BN'])
def test_depthwise_head_overfits_a_fixed_batch(norm):
    """The light head (depthwise-separable branches) still learns: the
    fixed batch of the test above, GN shared over levels or BN per level
    (the lite config)."""
    feats, samples = synthetic_batch()
    torch.manual_seed(0)
    extra = (dict(norm_cfg=dict(type='BN'), share_levels=False)
             if norm == 'BN' else {})
    head = TALDetHead(num_classes=3, in_channels=32, feat_channels=32,
                      use_depthwise=True, **extra)
    assert_overfits(head, feats, samples, one_per_object=False)
