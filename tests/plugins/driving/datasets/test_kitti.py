"""KittiDataset on records quoted from KITTI's own material plus hand-made
edge cases.

Fixture ``fixtures/kitti/training``:
* ``label_2/000000.txt``: the first training label of the KITTI object
  benchmark, ``Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89
  0.48 1.20 1.84 1.47 8.41 0.01``, in the 15-column format of the object
  devkit readme (type, truncated, occluded, alpha, bbox left/top/right/
  bottom "0-based index", dimensions, location, rotation_y).
* ``calib/000000.txt``: the calibration of that frame (P0..P3, R0_rect,
  Tr_velo_to_cam, Tr_imu_to_velo; "All matrices are stored row-major").
* ``label_2/000001.txt`` (hand-made): every class, DontCare with the
  readme's invalid placeholders (-1, -10, -1000), truncation, occlusion,
  a small far car; ``000002.txt`` is empty (an image without objects).
"""
import os
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

import perception_driving
from perception.data import BadSampleError
from perception.registry import DATASETS
from perception_driving.datasets import UnmappedClassError

perception_driving.register()  # the readers register in DATASETS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
FIXTURE = os.path.join(HERE, 'fixtures', 'kitti', 'training')


@pytest.fixture
def kitti_root(tmp_path):
    root = tmp_path / 'training'
    shutil.copytree(FIXTURE, root)
    (root / 'image_2').mkdir()
    for i in range(3):  # KITTI frame 000000 is 1224 x 370
        Image.new('RGB', (1224, 370), (90, 90, 90)).save(
            root / 'image_2' / f'{i:06d}.png')
    return root


def _build(root, **overrides):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', '_base_', 'datasets',
                                       'kitti_detection.py'))
    ds_cfg = cfg.train_dataloader.dataset
    # serialize_data=False: mmengine's serialisation runs gc.collect(),
    # seconds per build in a test process full of objects
    ds_cfg.update(dict(dict(data_root=str(root), on_bad_sample='error',
                            serialize_data=False), **overrides))
    return DATASETS.build(ds_cfg)


def test_loads_devkit_record_through_config(kitti_root):
    ds = _build(kitti_root)
    assert len(ds) == 3
    info = ds.get_data_info(0)
    # inclusive pixel indices -> pixel edges: right/bottom + 1
    np.testing.assert_allclose(info['gt_bboxes'],
                               [[712.40, 143.00, 811.73, 308.92]], atol=1e-4)
    assert ds.metainfo['classes'][info['gt_labels'][0]] == 'pedestrian'
    assert info['gt_ignore_flags'].tolist() == [False]
    np.testing.assert_allclose(info['intrinsics'],
                               [[707.0493, 0, 604.0814], [0, 707.0493,
                                                          180.5066],
                                [0, 0, 1]], atol=1e-3)
    assert info['calib']['Tr_velo_to_cam'].shape == (3, 4)
    rec = info['kitti_records'][0]
    assert (rec['height'], rec['z'], rec['rotation_y']) == (1.89, 8.41, 0.01)
    packed = ds[0]
    assert packed['inputs'].shape[0] == 3
    gt = packed['data_samples'].gt_instances
    assert gt.bboxes.shape == (1, 4) and gt.labels.tolist() == [0]


def test_edge_cases_ignore_regions_and_filters(kitti_root):
    ds = _build(kitti_root)
    info = ds.get_data_info(1)
    classes = ds.metainfo['classes']
    names = [classes[i] if i >= 0 else 'any' for i in info['gt_labels']]
    assert names == ['car', 'car', 'rider', 'any', 'car', 'any']
    # Car kept; Van (occluded 1) kept; Cyclist truncated 0.45 > 0.3 ignored;
    # Person_sitting and DontCare ignored by the map; the 11-px car by
    # min_height
    assert info['gt_ignore_flags'].tolist() == [False, False, True, True,
                                                True, True]
    # DontCare carries no truncation/occlusion attribute
    assert info['kitti_records'][5]['type'] == 'DontCare'
    # the truncated Cyclist reaches the last pixel column (1223 -> 1224)
    assert info['gt_bboxes'][2, 2] == 1224
    assert ds.get_data_info(2)['gt_bboxes'].shape == (0, 4)
    table = ds.class_counts.table()
    assert 'DontCare' in table and 'Person_sitting' in table
    no_filter = _build(kitti_root, filters=None)
    assert no_filter.get_data_info(1)['gt_ignore_flags'].tolist() == [
        False, False, False, True, False, True]


def _corrupt(root, name, text):
    (root / 'label_2' / name).write_text(text)


@pytest.mark.parametrize('text,match', [
    ('Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64\n',
     r'000001\.txt:1: expected 15 values'),
    ('Car 0.00 0 -1.58 587.01 abc 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 '
     '46.70 -1.59\n', r"000001\.txt:1: field 'top' is not a number"),
    ('Car 0.00 0 0 10 10 5 50 1 1 1 1 1 1 0\n',
     r'000001\.txt:1: box .* negative or zero size'),
    ('Car 0.00 0 0 1300 10 1400 50 1 1 1 1 1 1 0\n',
     r'000001\.txt:1: box .* outside the 1224x370 image'),
])
def test_bad_lines_name_file_and_line(kitti_root, text, match):
    _corrupt(kitti_root, '000001.txt', text)
    with pytest.raises(BadSampleError, match=match):
        _build(kitti_root)
    ds = _build(kitti_root, on_bad_sample='skip', max_bad_fraction=1.0)
    assert len(ds) == 2 and len(ds.bad_samples) == 1
    assert '000001.txt:1' in ds.bad_samples[0]


def test_missing_label_file(kitti_root):
    os.remove(kitti_root / 'label_2' / '000002.txt')
    with pytest.raises(BadSampleError, match=r'000002\.txt: label file is '
                       'missing'):
        _build(kitti_root)
    assert len(_build(kitti_root, on_bad_sample='skip', max_bad_fraction=1.0)) == 2


def test_unmapped_class_is_always_an_error(kitti_root):
    _corrupt(kitti_root, '000002.txt',
             'Tractor 0.00 0 0 10 10 50 50 1 1 1 1 1 1 0\n')
    for policy in ('error', 'skip'):
        with pytest.raises(UnmappedClassError,
                           match=r"000002\.txt:1: class 'Tractor' is not in "
                           r'the class map .*kitti\.yaml'):
            _build(kitti_root, on_bad_sample=policy)


def test_missing_folder_says_what_to_set(tmp_path):
    with pytest.raises(FileNotFoundError, match='set data_root'):
        _build(tmp_path / 'nowhere')
