"""The Detector assembly: predictions come back in source-image pixels
through resize, flip and padding (exact), export's tensor mode, a config
that contradicts itself is a one-line error, and the whole detector overfits
one fixed batch of a generated drive."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from perception.data.transforms import PackInputs, RandomFlip, Resize
from perception.errors import UserError
from perception.evaluation import CocoMetric
from perception.models import Detector

CLASSES = ['car', 'pedestrian']


def tiny_detector(**head) -> Detector:
    torch.manual_seed(0)
    return Detector(
        class_names=CLASSES,
        data_preprocessor=dict(mean=[128.0] * 3, std=[64.0] * 3,
                               pad_size_divisor=32),
        backbone=dict(type='ConvNeXt', arch=dict(depths=(1, 1, 1, 1),
                                                 dims=(16, 24, 32, 48)),
                      out_indices=(1, 2, 3)),
        neck=dict(type='FPN', in_channels=[24, 32, 48], out_channels=32),
        head=dict(type='TALDetHead', in_channels=32, feat_channels=32,
                  **head))


def _pipeline_sample(image: np.ndarray) -> dict:
    """Resize to half, flip, then the preprocessor pads to 32s."""
    results = dict(img=image, img_shape=image.shape[:2],
                   ori_shape=image.shape[:2])
    results = Resize((50, 30), keep_ratio=True)(results)
    results = RandomFlip(prob=1.0)(results)
    return PackInputs()(results)


def test_predict_maps_boxes_back_through_resize_flip_and_pad():
    model = tiny_detector().eval()
    packed = _pipeline_sample(np.zeros((60, 100, 3), np.uint8))
    data = model.data_preprocessor(dict(inputs=[packed['inputs']],
                                        data_samples=[packed['data_samples']]))
    assert data['inputs'].shape[-2:] == (32, 64)  # 30x50 padded
    # a known detection on the current (flipped, half-size) image
    current = torch.tensor([[[30.0, 5.0, 40.0, 25.0]]])
    scores = torch.tensor([[[0.9, 0.01]]])
    model.head.predict_raw = lambda feats: (current, scores)
    sample = model.predict(data['inputs'], data['data_samples'])[0]
    # unflip in width 50 -> [10, 5, 20, 25], then x2 -> source pixels
    torch.testing.assert_close(sample.pred_instances.bboxes,
                               torch.tensor([[20.0, 10.0, 40.0, 50.0]]))
    assert sample.pred_instances.labels.tolist() == [0]
    assert sample.metainfo['pred_space'] == 'source'


def test_coco_metric_does_not_map_source_predictions_twice():
    packed = _pipeline_sample(np.zeros((60, 100, 3), np.uint8))
    sample = packed['data_samples']
    from perception.structures import make_instances
    sample.gt_instances = make_instances(np.array([[30.0, 5.0, 40.0, 25.0]],
                                                  np.float32), [0])
    pred = make_instances(np.array([[20.0, 10.0, 40.0, 50.0]], np.float32),
                          [0])
    pred.scores = torch.tensor([0.9])
    sample.pred_instances = pred
    sample.set_metainfo(dict(pred_space='source', img_id=0))
    metric = CocoMetric(classes=CLASSES, classwise=False)
    metric.process({}, [sample.to_dict()])
    result = metric.compute_metrics(metric.results)
    assert result['AP50'] == pytest.approx(1.0, abs=1e-3)


def test_tensor_mode_is_what_export_takes():
    model = tiny_detector().eval()
    boxes, scores = model(torch.zeros(2, 3, 64, 96), mode='tensor')
    assert boxes.shape[0] == scores.shape[0] == 2
    assert boxes.shape[1] == scores.shape[1] and boxes.shape[2] == 4
    assert scores.shape[2] == len(CLASSES)


def test_class_count_mismatch_is_a_user_error():
    with pytest.raises(UserError, match='num_classes=3 but 2 class_names'):
        tiny_detector(num_classes=3)


def _drive_batch(tmp_path):
    """Two frames of a generated drive, read by the KITTI reader."""
    from perception.cli import main
    drive = tmp_path / 'drive'
    assert main(['synth-drive', str(drive), '--seed', '3', '--frames', '2',
                 '--size', '320', '180', '--cameras', '1',
                 '--formats', 'kitti']) == 0
    from perception.registry import DATASETS
    dataset = DATASETS.build(dict(
        type='KittiDataset', data_root=str(drive / 'kitti' / 'training'),
        class_map=str(drive / 'kitti' / 'class_map.yaml'),
        filters=dict(min_height=10),
        pipeline=[dict(type='LoadImage'), dict(type='PackInputs')]))
    return [dataset[i] for i in range(len(dataset))], dataset.metainfo[
        'classes']


def test_detector_overfits_one_batch_of_a_drive(tmp_path):
    items, classes = _drive_batch(tmp_path)
    torch.manual_seed(0)
    model = Detector(
        class_names=list(classes),
        data_preprocessor=dict(mean=[128.0] * 3, std=[64.0] * 3,
                               pad_size_divisor=32),
        backbone=dict(type='ConvNeXt', arch=dict(depths=(1, 1, 1, 1),
                                                 dims=(24, 32, 48, 64)),
                      out_indices=(1, 2, 3)),
        neck=dict(type='FPN', in_channels=[32, 48, 64], out_channels=48),
        head=dict(type='TALDetHead', in_channels=48, feat_channels=48))
    data = model.data_preprocessor(dict(
        inputs=[i['inputs'] for i in items],
        data_samples=[i['data_samples'] for i in items]), True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
    metric = CocoMetric(classes=list(classes), classwise=False)
    metric.dataset_meta = dict(classes=list(classes))
    metric.process({}, [p.to_dict() for p in preds])
    result = metric.compute_metrics(metric.results)
    assert result['AP50'] >= 0.9, result
