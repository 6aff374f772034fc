"""ImageFolderDataset, transforms and the data preprocessor."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from perception.data import BadSampleError, ImageFolderDataset, LoadImage, write_shape_images
from perception.models import PerceptionDataPreprocessor
from perception.registry import DATASETS, TRANSFORMS

PIPELINE = [dict(type='LoadImage'), dict(type='Resize', scale=(32, 24)),
            dict(type='PackInputs')]


def test_labelled_folders_give_classes_and_labels(tmp_path):
    write_shape_images(str(tmp_path), n_per_class=2, size=40)
    dataset = DATASETS.build(dict(type='ImageFolderDataset',
                                  data_root=str(tmp_path), with_label=True,
                                  pipeline=PIPELINE))
    assert dataset.metainfo['classes'] == ('circle', 'square', 'triangle')
    assert len(dataset) == 6
    sample = dataset[5]
    assert sample['inputs'].shape == (3, 24, 32)
    assert sample['inputs'].dtype == torch.uint8
    assert int(sample['data_samples'].gt_label) == 2
    assert sample['data_samples'].scale_factor == (32 / 40, 24 / 40)


def test_unlabelled_any_channel_count(tmp_path):
    gray16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 900)
    (tmp_path / 'sub').mkdir()
    Image.fromarray(gray16).save(tmp_path / 'sub' / 'a.png')
    dataset = ImageFolderDataset(
        str(tmp_path), pipeline=[dict(type='LoadImage',
                                      color_type='unchanged'),
                                 dict(type='PackInputs')])
    sample = dataset[0]
    assert sample['inputs'].shape == (1, 8, 8)
    np.testing.assert_array_equal(sample['inputs'][0].numpy().astype(
        np.uint16), gray16)
    assert 'gt_label' not in sample['data_samples']


def test_missing_root_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match='synth-images'):
        ImageFolderDataset(str(tmp_path / 'nope'))


def test_bad_image_skipped_and_counted_or_fatal(tmp_path):
    write_shape_images(str(tmp_path), n_per_class=1, size=16,
                       classes=('circle', ))
    (tmp_path / 'circle' / 'zz_broken.png').write_bytes(b'\x89PNG broken')
    strict = ImageFolderDataset(str(tmp_path), pipeline=PIPELINE)
    with pytest.raises(BadSampleError, match='zz_broken.png'):
        strict[1]
    lenient = ImageFolderDataset(str(tmp_path), pipeline=PIPELINE,
                                 on_bad_sample='skip', max_bad_fraction=0.5)
    assert lenient[1]['inputs'].shape == (3, 24, 32)
    # the broken file may be drawn again as the replacement: each counts
    assert len(lenient.bad_samples) >= 1
    assert all('zz_broken.png' in m for m in lenient.bad_samples)


def test_flip_and_resize_record_homography_that_maps_boxes_back():
    results = dict(img=np.zeros((10, 20, 3), np.uint8),
                   gt_bboxes=np.array([[2, 1, 6, 5]], np.float32))
    results = TRANSFORMS.build(dict(type='Resize', scale=(40, 20)))(results)
    results = TRANSFORMS.build(dict(type='RandomFlip', prob=1.0))(results)
    np.testing.assert_allclose(results['gt_bboxes'], [[28, 2, 36, 10]])
    inverse = np.linalg.inv(results['homography_matrix'])
    corners = np.array([[36, 2, 1], [28, 10, 1]], np.float32) @ inverse.T
    np.testing.assert_allclose(corners[:, :2], [[2, 1], [6, 5]], atol=1e-5)


def test_load_image_grayscale_has_one_channel(tmp_path):
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / 'a.png')
    out = LoadImage('grayscale')(dict(img_path=str(tmp_path / 'a.png')))
    assert out['img'].shape == (3, 3, 1)


def test_preprocessor_windows_then_normalizes():
    pre = PerceptionDataPreprocessor(mean=[0.5, 0.5], std=[0.25, 0.25],
                                     windows=[(40, 400), (-600, 1500)],
                                     channel_meaning=['soft', 'lung'])
    hu = torch.tensor([[[[40.0, 1000.0]]]])
    out = pre(dict(inputs=[hu[0]]))['inputs']
    expected_soft = ((40 - 39.5) / 399 + 0.5 - 0.5) / 0.25
    assert out.shape == (1, 2, 1, 2)
    assert out[0, 0, 0, 0].item() == pytest.approx(expected_soft, abs=1e-5)
    assert out[0, 0, 0, 1].item() == pytest.approx((1 - 0.5) / 0.25)
    cfg = pre.preprocessing_cfg()
    assert cfg['windows'] == [[40.0, 400.0], [-600.0, 1500.0]]
    assert cfg['channel_meaning'] == ['soft', 'lung']
    with pytest.raises(ValueError, match='2 mean values but the inputs have '
                       '6 channels'):  # 3 slices x 2 windows
        pre(dict(inputs=torch.zeros(1, 3, 2, 2)))


def test_core_geometric_transforms_update_intrinsics():
    """A 3D point projects onto the same transformed pixel either way."""
    K = np.array([[100.0, 0, 9.5], [0, 100.0, 4.5], [0, 0, 1]], np.float32)
    point = np.array([0.3, -0.2, 2.0])
    results = dict(img=np.zeros((10, 20, 3), np.uint8), intrinsics=K)
    results = TRANSFORMS.build(dict(type='Resize', scale=(40, 30)))(results)
    results = TRANSFORMS.build(dict(type='RandomFlip', prob=1.0))(results)
    projected = results['intrinsics'] @ point
    pixel_centre = projected[:2] / projected[2]
    original = K @ point
    edge = np.append(original[:2] / original[2] + 0.5, 1.0)
    expected = (results['homography_matrix'] @ edge)[:2] - 0.5
    np.testing.assert_allclose(pixel_centre, expected, atol=1e-4)


def test_uint8_resize_takes_the_native_kernel_and_stays_close_to_float():
    """uint8 images resize through torch's uint8 kernel (what training and
    inference both use), within 2 grey levels of the float path."""
    import torch

    from perception.data.transforms import resize_image
    img = (np.random.default_rng(3).random((90, 160, 3)) * 255).astype(np.uint8)
    for mode in ('bilinear', 'bicubic'):
        out = resize_image(img, 64, 36, mode)
        assert out.dtype == np.uint8 and out.shape == (36, 64, 3)
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(img).permute(2, 0, 1)[None].float(), size=(36, 64),
            mode=mode, align_corners=False, antialias=True)[0]
        ref = ref.round().clamp(0, 255).permute(1, 2, 0).numpy()
        assert np.abs(out.astype(float) - ref).max() <= 2
