"""frames.py: a source frame through frame_to_sample and the val pipeline
gives the dataset's tensor and meta; slabs of adjacent slices; the one
image reader and its 16-bit rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from perception.data import ImageFolderDataset
from perception.data.frames import frame_to_sample, slab_frames, slab_to_sample
from perception.data.image_io import ImageReadError, decode_image, read_image, to_uint8
from perception.registry import TRANSFORMS
from perception.sources import Frame, ImageFileOpener

VAL = [dict(type='Resize', scale=(16, 12)), dict(type='PackInputs')]


def _pipeline(results):
    for cfg in VAL:
        results = TRANSFORMS.build(cfg)(results)
    return results


def test_camera_frame_equals_the_dataset_sample(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / 'a.png')
    dataset = ImageFolderDataset(str(tmp_path), pipeline=[
        dict(type='LoadImage')] + VAL)
    expected = dataset[0]
    with ImageFileOpener().open(str(tmp_path / 'a.png'), camera='front'
                                ) as source:
        (frame, ) = list(source)
    sample = frame_to_sample(frame)
    assert sample['img_path'] == str(tmp_path / 'a.png')
    assert sample['camera'] == 'front' and sample['timestamp_ns'] == 0
    got = _pipeline(sample)
    assert got['inputs'].dtype == torch.uint8
    torch.testing.assert_close(got['inputs'], expected['inputs'])
    meta, ref = got['data_samples'].metainfo, expected['data_samples'].metainfo
    for key in ('img_path', 'img_shape', 'ori_shape', 'scale_factor'):
        assert meta[key] == ref[key], key
    np.testing.assert_allclose(meta['homography_matrix'],
                               ref['homography_matrix'])
    assert meta['camera'] == 'front' and meta['timestamp_ns'] == 0


def test_intrinsics_follow_the_resize():
    k = np.array([[100, 0, 19.5], [0, 100, 11.5], [0, 0, 1]], np.float64)
    frame = Frame(np.zeros((24, 40, 3), np.uint8), 5, 2, 'left',
                  {'intrinsics': k, 'clock': 'pts'})
    sample = frame_to_sample(frame, sample_idx=7)
    assert sample['intrinsics'].dtype == np.float32
    assert sample['frame_index'] == 2 and sample['sample_idx'] == 7
    meta = _pipeline(sample)['data_samples'].metainfo
    np.testing.assert_allclose(meta['intrinsics'][0, 0], 40.0)  # 100 * 16/40
    np.testing.assert_allclose(meta['intrinsics'][0, 2], 7.5)


def test_raw_16_bit_frame_keeps_its_depth():
    raw = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    sample = frame_to_sample(Frame(raw, 0, 0))
    assert sample['img'].shape == (3, 4, 1)
    assert sample['img'].dtype == np.uint16


def _ct_frames(n=4):
    affine = np.eye(4)
    affine[:3, 3] = (-10, 20, 30)
    return [Frame(np.full((6, 8), 100.0 * z, np.float32), z, z, '1.2.3',
                  {'series_uid': '1.2.3', 'slice_index': z, 'affine': affine,
                   'path': f'/ct/{z}.dcm', 'clock': 'index'})
            for z in range(n)]


def test_ct_slice_sample_has_the_dataset_keys():
    frame = _ct_frames()[2]
    sample = frame_to_sample(frame)
    assert set(sample) == {'img', 'img_shape', 'ori_shape', 'img_path',
                           'series_uid', 'slice_index', 'affine'}
    assert sample['img'].shape == (6, 8, 1)
    assert sample['img'].dtype == np.float32
    assert sample['affine'].dtype == np.float32
    assert sample['slice_index'] == 2 and sample['img_path'] == '/ct/2.dcm'


def test_slab_stacks_neighbours_with_edges_repeated():
    frames = _ct_frames()
    sample = slab_to_sample(frames, offsets=(-1, 0, 1), centre=0)
    assert sample['img'].shape == (6, 8, 3)
    assert [float(sample['img'][0, 0, c]) for c in range(3)] == [0, 0, 100]
    assert sample['slice_index'] == 0 and sample['slice_offsets'] == [-1, 0, 1]
    # just the neighbours: the centre is the middle frame
    mid = slab_to_sample(frames[1:4])
    assert mid['slice_index'] == 2
    assert [float(mid['img'][0, 0, c]) for c in range(3)] == [100, 200, 300]
    packed = _pipeline(mid)['data_samples'].metainfo
    assert packed['slice_offsets'] == [-1, 0, 1]
    assert [f.index for f in slab_frames(frames, 3, (-2, 0, 2))] == [1, 3, 3]


def test_slab_refuses_mixed_series():
    frames = _ct_frames(3)
    frames[0].meta['series_uid'] = '9.9'
    with pytest.raises(ValueError, match='several series'):
        slab_to_sample(frames)
    with pytest.raises(ValueError, match='centre 5 is outside'):
        slab_to_sample(frames, centre=5)


def test_one_reader_one_16_bit_rule(tmp_path):
    gray16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    Image.fromarray(gray16).save(tmp_path / 'g.png')
    np.testing.assert_array_equal(read_image(tmp_path / 'g.png', raw=True),
                                  gray16)
    rgb = read_image(tmp_path / 'g.png')
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 1], gray16 >> 8)
    np.testing.assert_array_equal(to_uint8(np.array([257 * 7, 65535],
                                                    np.uint16)), [7, 255])
    colour = np.zeros((2, 2, 4), np.uint8)
    colour[..., 0], colour[..., 3] = 200, 255
    Image.fromarray(colour).save(tmp_path / 'rgba.png')
    assert read_image(tmp_path / 'rgba.png').shape == (2, 2, 3)
    assert read_image(tmp_path / 'rgba.png', raw=True)[0, 0].tolist() == [
        200, 0, 0, 255]
    assert read_image(tmp_path / 'rgba.png', gray=True).shape == (2, 2)


def test_bad_files_name_the_file_and_why(tmp_path):
    with pytest.raises(ImageReadError, match=r'nope\.png: image file is '
                       'missing'):
        read_image(tmp_path / 'nope.png')
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ImageReadError, match=r'empty\.png: is empty'):
        read_image(tmp_path / 'empty.png')
    (tmp_path / 'bad.png').write_bytes(b'not a png')
    with pytest.raises(ImageReadError, match=r'bad\.png: not a readable '
                       'image'):
        read_image(tmp_path / 'bad.png')
    with pytest.raises(ImageReadError, match='message 3: not a readable'):
        decode_image(b'xx', name='message 3')
