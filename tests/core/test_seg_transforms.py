"""Label maps follow every geometric transform exactly (nearest neighbour
through the recorded homography), are packed as ``gt_sem_seg``, map back
to the source image, and are read from PNGs with a strict id map."""
from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
from PIL import Image

from perception.data import (
    Albumentations,
    LoadSegMap,
    PackInputs,
    RandomFlip,
    RandomResizedCrop,
    Resize,
    SegLabelError,
    seg_to_source,
)
from perception.structures import SEG_IGNORE_INDEX


def _mask(h=37, w=53, seed=0):
    rng = np.random.default_rng(seed)
    # blocks of labels, so nearest sampling has clear answers
    small = rng.integers(0, 6, (h // 4 + 1, w // 4 + 1)).astype(np.uint8)
    return np.kron(small, np.ones((4, 4), np.uint8))[:h, :w].copy()


def _results(mask):
    img = np.repeat((mask * 40)[..., None], 3, axis=2).astype(np.uint8)
    return dict(img=img, gt_seg_map=mask.copy(), img_shape=mask.shape,
                ori_shape=mask.shape)


def _source_pixels(results, mask, nudge=(0.0, 0.0)):
    """Source pixel (sx, sy) every output pixel centre sees through the
    inverse of the recorded homography, nudged by ``nudge`` (x, y) px before
    flooring, and whether it lies inside ``mask``."""
    h, w = results['gt_seg_map'].shape
    inverse = np.linalg.inv(np.asarray(results['homography_matrix'],
                                       np.float64))
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5,
                         indexing='ij')
    src = np.stack([xs, ys, np.ones_like(xs)], -1) @ inverse.T
    sx = np.floor(src[..., 0] / src[..., 2] + nudge[0]).astype(int)
    sy = np.floor(src[..., 1] / src[..., 2] + nudge[1]).astype(int)
    inside = (sx >= 0) & (sy >= 0) & (sx < mask.shape[1]) & \
        (sy < mask.shape[0])
    return sx, sy, inside


def _through_homography(results, mask, nudge=(0.0, 0.0)):
    """The label every output pixel centre sees in ``mask`` through the
    inverse of the recorded homography (255 outside)."""
    sx, sy, inside = _source_pixels(results, mask, nudge)
    out = np.full(inside.shape, SEG_IGNORE_INDEX, np.uint8)
    out[inside] = mask[sy[inside], sx[inside]]
    return out


def _assert_follows_homography_up_to_ties(results, mask):
    """Every label is the one its pixel centre sees through the homography;
    where a centre falls exactly on a source pixel edge (a tie, which
    OpenCV may break either way), either neighbour is right."""
    got = results['gt_seg_map']
    ok = np.zeros(got.shape, bool)
    steps = (-1e-6, 0.0, 1e-6)
    for nudge in itertools.product(steps, steps):
        ok |= got == _through_homography(results, mask, nudge)
    bad = np.argwhere(~ok)
    assert not len(bad), (f'{len(bad)} labels differ from the recorded '
                          f'geometry, first at {bad[:5].tolist()}')


@pytest.mark.parametrize('transform', [
    Resize((80, 50)), Resize((31, 19)), Resize((64, 64), keep_ratio=True),
    RandomFlip(prob=1.0), RandomResizedCrop((24, 40), crop_scale=(0.3, 0.6)),
])
def test_core_transforms_move_masks_exactly(transform):
    random.seed(3)
    mask = _mask()
    results = transform(_results(mask))
    assert results['gt_seg_map'].dtype == np.uint8
    assert results['gt_seg_map'].shape == results['img'].shape[:2]
    np.testing.assert_array_equal(results['gt_seg_map'],
                                  _through_homography(results, mask))


@pytest.mark.parametrize('transforms', [
    [dict(type='HorizontalFlip', p=1.0)],
    [dict(type='RandomCrop', height=20, width=30, p=1.0)],
    [dict(type='Resize', height=74, width=106, p=1.0)],
    [dict(type='Resize', height=20, width=25, p=1.0)],
    [dict(type='PadIfNeeded', min_height=48, min_width=64, p=1.0)],
    [dict(type='HorizontalFlip', p=1.0),
     dict(type='RandomResizedCrop', size=(30, 40), scale=(0.4, 0.8), p=1.0),
     dict(type='ColorJitter', p=1.0)],
])
@pytest.mark.parametrize('seed', range(8))
def test_albumentations_moves_masks_exactly(transforms, seed):
    random.seed(seed)
    mask = _mask(seed=seed)
    results = Albumentations(transforms)(_results(mask))
    assert results['gt_seg_map'].shape == results['img'].shape[:2]
    _assert_follows_homography_up_to_ties(results, mask)


def test_albumentations_draws_from_python_random():
    """A seeded run repeats its augmentations, and copies of the pipeline
    (forked data-loader workers, seeded apart) draw different ones."""
    crop = [dict(type='RandomResizedCrop', size=(30, 40), scale=(0.2, 0.9),
                 p=1.0)]
    mask = _mask()

    def run(pipeline, seed):
        random.seed(seed)
        out = pipeline(_results(mask))
        return np.asarray(out['homography_matrix'])

    first, second = Albumentations(crop), Albumentations(crop)
    np.testing.assert_array_equal(run(first, 5), run(second, 5))
    draws = {run(first, seed).tobytes() for seed in range(6)}
    assert len(draws) > 3


def test_affine_moves_the_mask_with_the_image_and_fills_ignore():
    mask = _mask(60, 80)
    results = Albumentations([dict(
        type='Affine', rotate=(12, 12), scale=(0.8, 0.8),
        translate_px={'x': (5, 5), 'y': (-3, -3)}, interpolation=0,
        p=1.0)])(_results(mask))
    out = results['gt_seg_map']
    inside = out != SEG_IGNORE_INDEX
    # nearest for both: the picture and the mask moved identically
    np.testing.assert_array_equal(results['img'][..., 0][inside],
                                  (out * 40)[inside])
    assert (~inside).sum() > 100  # the corners left by rotating: ignored
    # and as the recorded homography says (rounding ties at label edges)
    agree = (out == _through_homography(results, mask))[inside].mean()
    assert agree > 0.99


def test_pack_inputs_gives_gt_sem_seg():
    mask = _mask(8, 10)
    packed = PackInputs()(_results(mask))
    seg = packed['data_samples'].gt_sem_seg.data
    assert seg.dtype == torch.int64 and seg.shape == (1, 8, 10)
    assert torch.equal(seg[0], torch.from_numpy(mask).long())


def test_seg_to_source_undoes_resize_flip_and_pad():
    mask = _mask(30, 40)
    results = RandomFlip(prob=1.0)(Resize((80, 60))(_results(mask)))
    current = torch.from_numpy(results['gt_seg_map']).long()
    padded = torch.full((64, 96), 7, dtype=torch.long)  # batch padding
    padded[:60, :80] = current
    sample = dict(homography_matrix=results['homography_matrix'],
                  ori_shape=(30, 40))
    back = seg_to_source(sample, padded, mode='nearest')
    assert torch.equal(back, torch.from_numpy(mask).long())
    scores = torch.nn.functional.one_hot(padded, 8).permute(2, 0, 1).float()
    back = seg_to_source(sample, scores)
    assert back.shape == (8, 30, 40)
    assert torch.equal(back.argmax(0), torch.from_numpy(mask).long())


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return str(path)


def test_load_seg_map_maps_ids_and_names_unmapped_ones(tmp_path):
    ids = np.array([[7, 7, 8], [0, 26, 8]], np.uint8)
    path = _png(tmp_path / 'a_labelIds.png', ids)
    results = LoadSegMap()(dict(seg_map_path=path,
                                seg_id_map={7: 0, 8: 1, 26: 2, 0: 255}))
    np.testing.assert_array_equal(results['gt_seg_map'],
                                  [[0, 0, 1], [255, 2, 1]])
    with pytest.raises(SegLabelError, match=r'a_labelIds\.png.*id\(s\) 26 '):
        LoadSegMap()(dict(seg_map_path=path, seg_id_map={7: 0, 8: 1, 0: 255}))


def test_load_seg_map_refuses_colour_pictures(tmp_path):
    path = _png(tmp_path / 'colormap.png', np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(SegLabelError, match='colormap.png: a RGB colour '
                       'picture, not a label map'):
        LoadSegMap()(dict(seg_map_path=path))


@pytest.mark.parametrize('name', ['Mosaic', 'MixUp'])
def test_mixing_transforms_refuse_label_maps(name):
    from perception.errors import UserError
    from perception.registry import TRANSFORMS
    transform = TRANSFORMS.build(dict(type=name))
    with pytest.raises(UserError, match=f'{name} mixes boxes, not label '
                       r'maps \(gt_seg_map of a\.png\)'):
        transform(dict(_results(_mask(8, 8)), img_path='a.png'))
