"""Albumentations bridge: boxes follow a rendered rectangle, ignore flags
travel with their boxes, predictions map back, intrinsics follow."""
import random

import numpy as np
import pytest

from perception.data.albu import Albumentations
from perception.data.boxes import transform_boxes
from perception.registry import TRANSFORMS

BOX = np.array([[60, 40, 140, 100]], np.float32)

PIPELINES = {
    'flip-crop-pad': [dict(type='HorizontalFlip', p=1),
                      dict(type='RandomResizedCrop', size=(120, 200),
                           scale=(0.6, 1.0), p=1),
                      dict(type='PadIfNeeded', min_height=160,
                           min_width=240, border_mode=0, fill=0)],
    'affine': [dict(type='Affine', scale=(0.7, 1.3),
                    translate_percent=(-0.1, 0.1), p=1)],
    'vflip-resize': [dict(type='VerticalFlip', p=1),
                     dict(type='Resize', height=50, width=300, p=1),
                     dict(type='LongestMaxSize', max_size=200)],
    'perspective': [dict(type='Perspective', scale=(0.02, 0.05), p=1)],
    'pixel-only': [dict(type='ColorJitter', p=1),
                   dict(type='RandomBrightnessContrast', p=1)],
}


def _scene():
    img = np.zeros((150, 250, 3), np.uint8)
    img[40:100, 60:140] = 255  # the pixels of BOX (pixel-edge [60, 140))
    return img


def _extent(img):
    # the rectangle is whatever is brighter than halfway between the
    # image's darkest and brightest pixel: colour transforms move both
    channel = img[..., 0].astype(np.float32)
    ys, xs = np.nonzero(channel > (channel.min() + channel.max()) / 2)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


@pytest.mark.parametrize('name', sorted(PIPELINES))
def test_boxes_follow_rendered_rectangle_and_map_back(name):
    checked = 0
    for seed in range(6):
        random.seed(seed)  # the bridge draws each call's seed from here
        t = Albumentations(PIPELINES[name])
        r = t(dict(img=_scene(), gt_bboxes=BOX.copy(), gt_labels=np.array([3]),
                   gt_ignore_flags=np.array([False])))
        if not len(r['gt_bboxes']):
            continue
        box = r['gt_bboxes'][0]
        # the box hugs the transformed white rectangle (interpolation and
        # albumentations' own rounding: within one pixel)
        np.testing.assert_allclose(box, _extent(r['img']), atol=1.0)
        # un-clipped boxes map back onto the original box exactly
        whole = transform_boxes(BOX, r['homography_matrix'])[0]
        if np.allclose(whole, box, atol=1e-3) and name != 'perspective':
            back = transform_boxes(r['gt_bboxes'],
                                   np.linalg.inv(r['homography_matrix']))
            np.testing.assert_allclose(back, BOX, atol=1e-2)
            checked += 1
        assert r['img_shape'] == r['img'].shape[:2]
    assert checked or name == 'perspective'


def test_ignore_flags_and_labels_travel_with_their_boxes():
    boxes = np.array([[0, 0, 50, 50], [200, 100, 250, 150]], np.float32)
    t = TRANSFORMS.build(dict(type='Albumentations',
                              transforms=[dict(type='HorizontalFlip', p=1)]))
    r = t(dict(img=np.zeros((150, 250, 3), np.uint8), gt_bboxes=boxes,
               gt_labels=np.array([2, -1]),
               gt_ignore_flags=np.array([False, True])))
    order = np.argsort(r['gt_bboxes'][:, 0])
    np.testing.assert_allclose(r['gt_bboxes'][order],
                               [[0, 100, 50, 150], [200, 0, 250, 50]],
                               atol=1e-4)
    assert r['gt_labels'][order].tolist() == [-1, 2]
    assert r['gt_ignore_flags'][order].tolist() == [True, False]
    assert r['flip'] is True


@pytest.mark.parametrize('policy,expected', [('ignore', [True, False]),
                                             ('drop', [False])])
def test_cut_boxes_become_ignore_regions(policy, expected):
    # crop x in [100, 200): box A keeps 10 % of its width, box B all of it,
    # box C lies outside and disappears
    boxes = np.array([[10, 10, 110, 60], [120, 10, 180, 60],
                      [210, 10, 240, 60]], np.float32)
    t = Albumentations([dict(type='Crop', x_min=100, y_min=0, x_max=200,
                             y_max=100)], min_visibility=0.3,
                       small_boxes=policy)
    r = t(dict(img=np.zeros((100, 250, 3), np.uint8), gt_bboxes=boxes,
               gt_labels=np.array([0, 1, 2]),
               gt_ignore_flags=np.zeros(3, bool)))
    assert r['gt_ignore_flags'].tolist() == expected
    assert 2 not in r['gt_labels'].tolist()


def test_intrinsics_and_scale_follow_the_image():
    K = np.array([[700.0, 0, 600.5], [0, 700.0, 180.0], [0, 0, 1]])
    point = np.array([1.0, 0.5, 10.0])  # camera coordinates
    t = Albumentations([dict(type='HorizontalFlip', p=1),
                        dict(type='Resize', height=75, width=125, p=1)])
    r = t(dict(img=np.zeros((150, 250, 3), np.uint8), intrinsics=K,
               gt_bboxes=np.zeros((0, 4)), gt_labels=np.zeros(0, int)))
    assert r['scale_factor'] == pytest.approx((0.5, 0.5))
    # pixel centre of the point before, moved as pixels move (edge coords)
    uv = K @ point
    u, v = uv[:2] / uv[2]
    edge = r['homography_matrix'] @ np.array([u + 0.5, v + 0.5, 1.0])
    uv2 = r['intrinsics'] @ point
    np.testing.assert_allclose(uv2[:2] / uv2[2], edge[:2] - 0.5, atol=1e-3)


def test_refuses_transforms_it_cannot_record():
    t = Albumentations([dict(type='ElasticTransform', p=1)])
    with pytest.raises(ValueError, match='ElasticTransform'):
        t(dict(img=np.zeros((64, 64, 3), np.uint8),
               gt_bboxes=np.array([[1, 1, 20, 20]], np.float32),
               gt_labels=np.array([0])))
    with pytest.raises(ValueError, match='unknown transform type'):
        Albumentations([dict(type='NoSuchThing')])


def test_composes_with_earlier_geometry():
    from perception.data.transforms import Resize
    results = Resize((125, 75))(dict(img=_scene(), gt_bboxes=BOX.copy(),
                                     gt_labels=np.array([0])))
    r = Albumentations([dict(type='HorizontalFlip', p=1)])(results)
    back = transform_boxes(r['gt_bboxes'], np.linalg.inv(
        r['homography_matrix']))
    np.testing.assert_allclose(back, BOX, atol=1e-3)
