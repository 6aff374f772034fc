"""Mosaic and MixUp keep boxes, ignore regions and per-box fields on their
objects; the wrapper feeds them; the switch hook turns them off (also in
persistent data loader workers)."""
from __future__ import annotations

import copy
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from perception.data import MixUp, Mosaic, MultiImageMixDataset, boxes_to_source
from perception.data.boxes import transform_boxes
from perception.data.transforms import PackInputs
from perception.engine.mix_switch import MixSwitchHook
from perception.registry import DATASETS, HOOKS

BACKGROUND = (30, 30, 30)


def colour(label: int) -> tuple[int, int, int]:
    """A distinct colour per object label (never the background or pad)."""
    return (40 + 12 * label, 250 - 11 * label, 40 + (60 + 37 * label) % 190)


def make_sample(index: int, size=(60, 80), n_objects: int = 3) -> dict:
    """An image with coloured rectangles; the last object is an ignore
    region; occlusion = label / 10 so every field can be traced."""
    rng = np.random.default_rng(index)
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BACKGROUND
    boxes, labels = [], []
    for k in range(n_objects):
        label = index * n_objects + k
        bw, bh = rng.integers(12, 24), rng.integers(12, 20)
        # objects side by side, never overlapping
        x1 = 2 + k * (w // n_objects)
        y1 = int(rng.integers(0, h - bh))
        img[y1:y1 + bh, x1:x1 + bw] = colour(label)
        boxes.append([x1, y1, x1 + bw, y1 + bh])
        labels.append(label)
    return dict(img=img, img_path=f'img{index}.png', img_shape=(h, w),
                ori_shape=(h, w),
                gt_bboxes=np.asarray(boxes, np.float32),
                gt_labels=np.asarray(labels, np.int64),
                gt_ignore_flags=np.arange(n_objects) == n_objects - 1,
                gt_occluded=np.asarray(labels, np.float32) / 10)


class ListDataset:
    """The smallest dataset the wrapper needs."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return copy.deepcopy(self.samples[index])

    def get_data_info(self, index):
        return copy.deepcopy(self.samples[index])


@pytest.fixture
def dataset():
    return ListDataset([make_sample(i) for i in range(6)])


def assert_on_objects(results: dict, blend=None, tol: float = 1.0) -> None:
    """Every box's inside (1 px in from its edges: resampling blends the
    border) has its object's colour (colours differ by >= 11 per object)."""
    img = results['img'].astype(np.float32)
    assert len(results['gt_bboxes']) > 0
    for box, label, occluded in zip(results['gt_bboxes'],
                                    results['gt_labels'],
                                    results['gt_occluded']):
        x1, y1 = int(np.ceil(box[0])) + 1, int(np.ceil(box[1])) + 1
        x2, y2 = int(np.floor(box[2])) - 1, int(np.floor(box[3])) - 1
        assert occluded == pytest.approx(label / 10)
        if x2 <= x1 or y2 <= y1:
            continue
        want = np.asarray(colour(int(label)), np.float32)
        if blend is not None:
            want = blend(want)
        inside = img[y1:y2, x1:x2].reshape(-1, 3)
        assert np.abs(inside - want).max() <= tol, (box, label)


def test_mosaic_keeps_boxes_on_their_objects(dataset):
    mix = MultiImageMixDataset(dataset, [dict(type='Mosaic',
                                              img_scale=(64, 48))])
    random.seed(0)
    for index in range(12):
        out = mix[index % len(mix)]
        assert out['img'].shape == (96, 128, 3)
        assert out['img_shape'] == (96, 128)
        assert out['mosaic'] is True
        assert out['gt_bboxes'].dtype == np.float32
        assert out['gt_labels'].dtype == np.int64
        assert len(out['gt_bboxes']) == len(out['gt_labels']) == len(
            out['gt_ignore_flags']) == len(out['gt_occluded'])
        assert_on_objects(out)
        # boxes lie on the canvas
        assert (out['gt_bboxes'][:, :2] >= 0).all()
        assert (out['gt_bboxes'][:, 2] <= 128).all()
        assert (out['gt_bboxes'][:, 3] <= 96).all()
        # ignore regions follow: an object's flag goes with it
        for label, flag in zip(out['gt_labels'], out['gt_ignore_flags']):
            assert flag == (label % 3 == 2)
        assert 'mix_results' not in out


def test_mosaic_main_image_geometry_and_refused_back_mapping(dataset):
    random.seed(1)
    mosaic = Mosaic(img_scale=(64, 48), center_ratio_range=(1.4, 1.4))
    main = dataset[0]
    results = dict(main, mix_results=[dataset[i] for i in (1, 2, 3)])
    out = mosaic(results)
    # the main image fits 64x48 whole (centre far enough): its boxes are
    # its original boxes mapped by the recorded homography
    first = out['gt_labels'] < 3
    np.testing.assert_allclose(
        out['gt_bboxes'][first],
        transform_boxes(main['gt_bboxes'], out['homography_matrix']),
        atol=1e-4)
    packed = PackInputs()(out)['data_samples']
    assert packed.metainfo['mosaic'] is True
    assert torch.allclose(packed.gt_instances.occluded,
                          torch.as_tensor(out['gt_occluded']))
    with pytest.raises(ValueError, match='mosaic'):
        boxes_to_source(packed, np.zeros((1, 4)))


def test_mosaic_drops_and_counts_boxes_that_shrink(dataset):
    # centre at (0.5 w, 0.5 h): only the right/bottom part of the main
    # image (fitted into 64x48) lies on the canvas; its first object at
    # x 2..~16 of 80 px becomes x < 0 and leaves
    mosaic = Mosaic(img_scale=(64, 48), center_ratio_range=(0.5, 0.5),
                    min_area_ratio=0.3)
    results = dict(dataset[0], mix_results=[dataset[i] for i in (1, 2, 3)])
    out = mosaic(results)
    kept = set(out['gt_labels'].tolist())
    assert 0 not in kept
    assert out['mix_dropped_boxes'] >= 1
    assert mosaic.dropped == out['mix_dropped_boxes']
    total = sum(len(dataset[i]['gt_bboxes']) for i in range(4))
    assert len(out['gt_bboxes']) + out['mix_dropped_boxes'] == total
    assert_on_objects(out)


def test_mosaic_small_boxes_can_become_ignore_regions(dataset):
    mosaic = Mosaic(img_scale=(64, 48), center_ratio_range=(0.5, 0.5),
                    min_area_ratio=0.99, small_boxes='ignore')
    out = mosaic(dict(dataset[0],
                      mix_results=[dataset[i] for i in (1, 2, 3)]))
    cropped = [label for label, box in zip(out['gt_labels'],
                                            out['gt_bboxes'])
               if box[0] == 0 or box[1] == 0]
    assert cropped
    flags = dict(zip(out['gt_labels'].tolist(),
                     out['gt_ignore_flags'].tolist()))
    assert all(flags[label] for label in cropped)


def test_mixup_blends_and_joins_boxes(dataset):
    random.seed(3)
    mixup = MixUp(ratio_range=(1.0, 1.0), flip_ratio=1.0)
    main, other = dataset[0], dataset[1]
    out = mixup(dict(main, mix_results=[other]))
    assert out['mixup'] is True
    assert out['img'].shape == main['img'].shape
    n_main = len(main['gt_bboxes'])
    # main boxes first and unchanged, the second image's after
    np.testing.assert_array_equal(out['gt_bboxes'][:n_main],
                                  main['gt_bboxes'])
    assert out['gt_labels'][:n_main].tolist() == main['gt_labels'].tolist()
    assert set(out['gt_labels'][n_main:].tolist()) <= set(
        other['gt_labels'].tolist())
    assert out['gt_ignore_flags'].tolist() == [
        label % 3 == 2 for label in out['gt_labels']]
    # geometry of the main image unchanged
    assert 'homography_matrix' not in out
    # same size, no jitter: the flipped second image covers it entirely
    flipped = other['img'][:, ::-1].astype(np.float32)
    expect = np.round(0.5 * main['img'] + 0.5 * flipped)
    np.testing.assert_allclose(out['img'], expect, atol=1)
    # second-image boxes are on their (blended) objects
    second = {k: out[k][n_main:] for k in ('gt_bboxes', 'gt_labels',
                                          'gt_occluded')}
    second['img'] = (2 * out['img'].astype(np.float32)
                     - main['img'].astype(np.float32))
    assert_on_objects(second)


def test_mixup_with_jitter_keeps_boxes_on_objects(dataset):
    random.seed(4)
    mixup = MixUp(ratio_range=(0.6, 1.4))
    zeros = dict(dataset[0], img=np.zeros_like(dataset[0]['img']),
                 gt_bboxes=np.zeros((0, 4), np.float32),
                 gt_labels=np.zeros(0, np.int64),
                 gt_ignore_flags=np.zeros(0, bool),
                 gt_occluded=np.zeros(0, np.float32))
    for i in range(1, 6):
        out = mixup(dict(copy.deepcopy(zeros), mix_results=[dataset[i]]))
        if len(out['gt_bboxes']):
            assert_on_objects(out, blend=lambda c: np.round(0.5 * c))


def test_wrapper_from_config_and_skip_type_keys(dataset):
    mix = DATASETS.build(dict(
        type='MultiImageMixDataset', dataset=dataset,
        pipeline=[dict(type='Mosaic', img_scale=(64, 48)),
                  dict(type='MixUp'), dict(type='PackInputs')]))
    assert mix.pipeline_types == ['Mosaic', 'MixUp', 'PackInputs']
    sample = mix[0]['data_samples']
    assert sample.metainfo['mosaic'] and sample.metainfo['mixup']
    mix.update_skip_type_keys(['Mosaic', 'MixUp'])
    sample = mix[0]['data_samples']
    assert 'mosaic' not in sample.metainfo
    assert 'mixup' not in sample.metainfo
    assert tuple(sample.img_shape) == (60, 80)
    with pytest.raises(ValueError, match='skip_type_keys'):
        mix.update_skip_type_keys('Mosaic')


def fake_runner(loader, epoch: int, max_epochs: int):
    return SimpleNamespace(epoch=epoch, max_epochs=max_epochs,
                           train_loop=SimpleNamespace(dataloader=loader))


def test_switch_hook_turns_mixing_off_at_the_right_epoch(dataset):
    mix = MultiImageMixDataset(dataset, [dict(type='Mosaic',
                                              img_scale=(64, 48))])
    loader = SimpleNamespace(dataset=mix)
    hook = HOOKS.build(dict(type='MixSwitchHook', num_last_epochs=2))
    for epoch in range(5):
        hook.before_train_epoch(fake_runner(loader, epoch, max_epochs=5))
        assert ('Mosaic' in mix.skip_type_keys) == (epoch >= 3), epoch
    with pytest.raises(ValueError, match='MultiImageMixDataset'):
        MixSwitchHook(1).before_train_epoch(
            fake_runner(SimpleNamespace(dataset=dataset), 4, 5))


def _collate(batch):
    return batch


def test_switch_reaches_persistent_workers(dataset):
    mix = MultiImageMixDataset(dataset, [dict(type='Mosaic',
                                              img_scale=(64, 48))])
    loader = torch.utils.data.DataLoader(
        mix, batch_size=3, num_workers=1, persistent_workers=True,
        collate_fn=_collate)
    first = [s for batch in loader for s in batch]
    assert all(s.get('mosaic') for s in first)
    hook = MixSwitchHook(num_last_epochs=1)
    hook.before_train_epoch(fake_runner(loader, 1, max_epochs=2))
    assert loader._iterator is None  # workers restarted on next epoch
    second = [s for batch in loader for s in batch]
    assert not any(s.get('mosaic') for s in second)
    assert second[0]['img'].shape == (60, 80, 3)


def test_mosaic_then_albumentations_back_to_size(dataset):
    """The documented recipe: Mosaic, then random scale and a centre crop
    through the albumentations bridge; boxes and fields still follow."""
    mix = MultiImageMixDataset(dataset, [
        dict(type='Mosaic', img_scale=(64, 48)),
        dict(type='Albumentations', small_boxes='drop', min_visibility=0.3,
             transforms=[dict(type='Affine', scale=(0.8, 1.2),
                              translate_percent=(-0.1, 0.1), p=1.0),
                         dict(type='CenterCrop', height=48, width=64)])])
    random.seed(5)
    np.random.seed(5)
    seen = 0
    for index in range(6):
        out = mix[index]
        assert out['img'].shape == (48, 64, 3)
        assert out['mosaic'] is True
        if len(out['gt_bboxes']):
            # two resamplings blend a little more of the border in
            assert_on_objects(out, tol=4.0)
            seen += 1
    assert seen


def test_mixup_beta_weight_stays_between_the_images(dataset):
    random.seed(6)
    main = dict(dataset[0], img=np.full((60, 80, 3), 100, np.uint8))
    other = dict(dataset[1], img=np.full((60, 80, 3), 200, np.uint8))
    out = MixUp(ratio_range=(1.0, 1.0), alpha=1.5)(
        dict(main, mix_results=[other]))
    values = np.unique(out['img'])
    assert len(values) == 1 and 100 <= values[0] <= 200


class _MosaicSpy(torch.nn.Module):
    """A model that records, per epoch, whether its samples were mosaics."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[bool] = []

    def forward(self, inputs, data_samples=None, mode='loss'):
        self.seen.append(all('mosaic' in s.metainfo for s in data_samples))
        return dict(loss=(self.weight - 1).pow(2).sum())

    def train_step(self, data, optim_wrapper):
        losses = self(**data)
        optim_wrapper.update_params(losses['loss'])
        return losses


def test_switch_hook_in_a_runner_with_persistent_workers(dataset, tmp_path):
    from mmengine.runner import Runner
    model = _MosaicSpy()
    runner = Runner(
        model=model, work_dir=str(tmp_path), default_scope='perception',
        train_dataloader=dict(
            batch_size=3, num_workers=1, persistent_workers=True,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='MultiImageMixDataset', dataset=dataset,
                         pipeline=[dict(type='Mosaic', img_scale=(64, 48)),
                                   dict(type='PackInputs')])),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='MixSwitchHook', num_last_epochs=1)],
        default_hooks=dict(logger=None, checkpoint=None),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), log_level='WARNING')
    runner.train()
    # 6 samples, batch 3: two iterations per epoch; the third epoch plain
    assert model.seen == [True, True, True, True, False, False]
