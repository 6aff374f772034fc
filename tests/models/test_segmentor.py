"""The Segmentor and Classifier assemblies: export's tensor mode, masks come
back in source pixels through resize, flip and padding, a segmentor
overfits one batch (mIoU >= 0.9), the losses and the IoU metric give the
hand-computed numbers, a classifier trains and its linear probe freezes the
backbone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from perception.data.transforms import PackInputs, RandomFlip, Resize
from perception.errors import UserError
from perception.evaluation import IoUMetric
from perception.evaluation.iou_metric import confusion, iou_from_confusion
from perception.models import Classifier, CrossEntropyLoss, DiceLoss, Segmentor

CLASSES = ['background', 'road', 'car']
TINY_CONVNEXT = dict(type='ConvNeXt', arch=dict(depths=(1, 1, 1, 1),
                                                dims=(16, 24, 32, 48)),
                     out_indices=(0, 1, 2, 3))


def tiny_segmentor(**kwargs) -> Segmentor:
    torch.manual_seed(0)
    return Segmentor(
        class_names=CLASSES,
        data_preprocessor=dict(mean=[128.0] * 3, std=[64.0] * 3,
                               pad_size_divisor=32),
        backbone=TINY_CONVNEXT,
        neck=dict(type='FPN', in_channels=[16, 24, 32, 48], out_channels=32,
                  in_indices=(0, 1, 2, 3)),
        head=dict(type='FPNSegHead', in_channels=32, num_levels=4,
                  channels=32, dropout=0.0, **kwargs))


def _scene(seed: int, h: int = 64, w: int = 96):
    """A picture and its labels: a road band (grey) and cars (red)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((h, w), np.uint8)
    labels[h // 2:] = 1
    for _ in range(2):
        x, y = rng.integers(5, w - 25), rng.integers(h // 2 - 10, h - 15)
        labels[y:y + 12, x:x + 20] = 2
    colours = np.array([[40, 120, 200], [110, 110, 110], [220, 30, 30]])
    image = colours[labels] + rng.integers(-20, 20, (h, w, 3))
    return image.clip(0, 255).astype(np.uint8), labels


def _packed(image, labels, pipeline=()):
    results = dict(img=image, gt_seg_map=labels, img_shape=image.shape[:2],
                   ori_shape=image.shape[:2])
    for transform in pipeline:
        results = transform(results)
    return PackInputs()(results)


def _batch(model, packed):
    return model.data_preprocessor(dict(
        inputs=[p['inputs'] for p in packed],
        data_samples=[p['data_samples'] for p in packed]))


def test_tensor_mode_gives_logits_at_the_input_size():
    model = tiny_segmentor().eval()
    logits = model(torch.randn(2, 3, 64, 96), mode='tensor')
    assert logits.shape == (2, 3, 64, 96)


def test_predict_maps_masks_back_through_resize_flip_and_pad():
    model = tiny_segmentor().eval()
    image, labels = _scene(0, 60, 100)
    packed = _packed(image, labels, [Resize((50, 30), keep_ratio=True),
                                     RandomFlip(prob=1.0)])
    data = _batch(model, [packed])
    assert data['inputs'].shape[-2:] == (32, 64)  # 30x50 padded
    # logits that say "the label map as the pipeline delivered it"
    current = torch.full((32, 64), 0, dtype=torch.long)
    current[:30, :50] = packed['data_samples'].gt_sem_seg.data[0]
    model.head.logits = lambda feats, size: torch.nn.functional.one_hot(
        current, 3).permute(2, 0, 1)[None].float()
    sample = model.predict(data['inputs'], data['data_samples'])[0]
    pred = sample.pred_sem_seg.data
    assert pred.shape == (1, 60, 100) and pred.dtype == torch.int64
    # unflipped and upscaled x2 by nearest: the labels at every other pixel
    # of the source are the 30x50 map's; they agree with the source labels
    # wherever the half-size map kept them
    agree = (pred[0].numpy() == labels).mean()
    assert agree > 0.93
    assert sample.metainfo['pred_space'] == 'source'


def test_segmentor_overfits_one_batch():
    model = tiny_segmentor()
    packed = [_packed(*_scene(seed)) for seed in (1, 2)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(80):
        data = _batch(model, packed)
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    metric = IoUMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    with torch.no_grad():
        data = _batch(model, [_packed(*_scene(seed)) for seed in (1, 2)])
        samples = model(data['inputs'], data['data_samples'], mode='predict')
    metric.process(None, [s.to_dict() for s in samples])
    scores = metric.compute_metrics(metric.results)
    assert scores['mIoU'] >= 90.0, scores
    assert set(scores) >= {'mIoU', 'mAcc', 'aAcc', 'IoU.road', 'IoU.car'}


def test_vit_without_neck_and_dice_loss():
    torch.manual_seed(0)
    model = Segmentor(
        class_names=CLASSES,
        backbone=dict(type='VisionTransformer', arch=dict(
            embed_dim=32, depth=2, num_heads=2),
            img_size=(64, 96), patch_size=16),
        head=dict(type='FPNSegHead', in_channels=32, channels=16,
                  loss=[dict(type='CrossEntropyLoss'),
                        dict(type='DiceLoss', loss_weight=0.5)]))
    image, labels = _scene(3)
    data = _batch(model, [_packed(image, labels)])
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {'loss_crossentropy', 'loss_dice'}
    assert model(data['inputs'], mode='tensor').shape == (1, 3, 64, 96)


def test_class_count_mismatch_is_a_user_error():
    with pytest.raises(UserError, match=r'head.num_classes=5 but 3 '
                       'class_names'):
        tiny_segmentor(num_classes=5)


def test_label_map_loaded_after_resize_is_a_clear_training_error():
    model = tiny_segmentor()
    image, labels = _scene(0)
    results = Resize((48, 32))(dict(img=image, img_shape=image.shape[:2],
                                    ori_shape=image.shape[:2]))
    results['gt_seg_map'] = labels  # loaded after the resize: source size
    data = _batch(model, [PackInputs()(results)])
    with pytest.raises(UserError, match='put LoadSegMap before the '
                       'geometric transforms'):
        model(data['inputs'], data['data_samples'], mode='loss')


def test_losses_ignore_index_and_perfect_dice():
    logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (1, 2, 1, 2)
    labels = torch.tensor([[[0, 255]]])
    ce = CrossEntropyLoss()(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits[..., :1],
                                                 labels[..., :1])
    torch.testing.assert_close(ce, expected)
    assert CrossEntropyLoss()(logits, torch.full((1, 1, 2), 255)) == 0
    perfect = DiceLoss(smooth=0.0)(logits * 100, torch.tensor([[[0, 1]]]))
    assert float(perfect) == pytest.approx(0.0, abs=1e-6)


def test_iou_numbers_by_hand():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])
    scores = iou_from_confusion(confusion(pred, gt, 3))
    # class 0: inter 1, union 2 + 2 - 1 = 3; class 1: 3 / (3 + 4 - 3);
    # class 2: 1 / (2 + 1 - 1); pixel accuracy 5 of 7 counted pixels
    np.testing.assert_allclose(scores['iou'], [1 / 3, 3 / 4, 1 / 2])
    assert float(scores['aacc']) == pytest.approx(5 / 7)


def test_classifier_trains_predicts_and_linear_probe_freezes():
    torch.manual_seed(0)
    model = Classifier(class_names=['day', 'night'],
                       data_preprocessor=dict(mean=[128.0] * 3,
                                              std=[64.0] * 3),
                       backbone=dict(TINY_CONVNEXT, out_indices=(3, )),
                       head=dict(type='MLPClsHead', in_channels=48,
                                 hidden_channels=(32, )))
    bright = [PackInputs()(dict(img=np.full((32, 32, 3), v, np.uint8),
                                gt_label=int(v < 100)))
              for v in (200, 220, 30, 50)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        data = _batch(model, bright)
        loss = model(data['inputs'], data['data_samples'], mode='loss')
        optimizer.zero_grad()
        loss['loss_cls'].backward()
        optimizer.step()
    model.eval()
    data = _batch(model, bright)
    assert model(data['inputs'], mode='tensor').shape == (4, 2)
    samples = model(data['inputs'], data['data_samples'], mode='predict')
    assert [int(s.pred_label) for s in samples] == [0, 0, 1, 1]
    probe = Classifier(class_names=['day', 'night'],
                       backbone=dict(TINY_CONVNEXT, out_indices=(3, ),
                                     frozen_stages='all'),
                       head=dict(type='LinearClsHead', in_channels=48,
                                 norm='BN'))
    trainable = {n for n, p in probe.named_parameters() if p.requires_grad}
    assert trainable == {'head.fc.weight', 'head.fc.bias'}
