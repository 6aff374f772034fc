"""No record is dropped silently: every malformed record of the KITTI,
BDD100K, COCO and nuImages/nuScenes readers (strings or NaN in boxes,
wrong-length or negative sizes, NaN translations, labels whose image is
missing, annotations whose image id or token dangles) is an error naming the
file and record, or under on_bad_sample='skip' a counted skip; a dataset
left with nothing is one line naming the data root and the counts.

Each case writes its own malformed file into a copy of the fixtures."""
from __future__ import annotations

import json
import math
import os
import shutil

import pytest
from mmengine.config import Config
from PIL import Image

import perception_driving
from perception.data import BadSampleError
from perception.data.base_dataset import EmptyDatasetError
from perception.registry import DATASETS

perception_driving.register()

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
FIXTURES = os.path.join(HERE, 'fixtures')
GOOD_KITTI = ('Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 '
              '-0.65 1.71 46.70 -1.59')


def build(base: str, **cfg):
    config = Config.fromfile(os.path.join(REPO, 'configs', '_base_',
                                          'datasets', base))
    ds_cfg = config.train_dataloader.dataset
    ds_cfg.update(dict(on_bad_sample='error', serialize_data=False), **cfg)
    return DATASETS.build(ds_cfg)


def check(base: str, match: str, named: str, skipped_len: int | None,
          **cfg) -> None:
    """'error' raises naming ``named`` and ``match``; 'skip' keeps
    ``skipped_len`` samples and counts the record (None: nothing is left,
    which is the one-line empty-dataset error)."""
    with pytest.raises(BadSampleError, match=match) as info:
        build(base, **cfg)
    assert named in str(info.value)
    if skipped_len is None:
        with pytest.raises(EmptyDatasetError) as info:
            build(base, on_bad_sample='skip', max_bad_fraction=1.0, **cfg)
        message = str(info.value)
        assert cfg['data_root'] in message and 'were bad' in message
        assert len(message.splitlines()) == 1
        return
    ds = build(base, on_bad_sample='skip', max_bad_fraction=1.0, **cfg)
    assert len(ds) == skipped_len
    assert len(ds.bad_records) >= 1
    assert any(named in r['reason'] for r in ds.bad_records)


# -- KITTI --------------------------------------------------------------------


@pytest.fixture
def kitti(tmp_path):
    root = tmp_path / 'training'
    shutil.copytree(os.path.join(FIXTURES, 'kitti', 'training'), root)
    (root / 'image_2').mkdir()
    for i in range(3):
        Image.new('RGB', (1224, 370)).save(root / 'image_2' / f'{i:06d}.png')
    return root


@pytest.mark.parametrize('line,match', [
    (GOOD_KITTI.replace('587.01', 'nan'), 'non-finite|not a finite'),
    (GOOD_KITTI.replace('0.00 0', 'nan 0', 1), "'truncated' is not a finite"),
    (GOOD_KITTI.replace('-0.65', 'inf'), "'x' is not a finite"),
    (GOOD_KITTI.replace('1.65 1.67', '-1.65 1.67'), 'negative size'),
    (GOOD_KITTI.replace('614.12', '580.0'), 'negative or zero size'),
])
def test_kitti_bad_numbers(kitti, line, match):
    (kitti / 'label_2' / '000001.txt').write_text(line + '\n')
    check('kitti_detection.py', match, '000001.txt:1', 2,
          data_root=str(kitti))


def test_kitti_label_without_image(kitti):
    (kitti / 'label_2' / '000007.txt').write_text(GOOD_KITTI + '\n')
    (kitti / 'calib' / '000007.txt').write_text(
        (kitti / 'calib' / '000000.txt').read_text())
    check('kitti_detection.py', r'000007\.png is missing', '000007.txt', 3,
          data_root=str(kitti))


def test_kitti_every_label_bad_is_one_line_with_counts(kitti):
    for i in range(3):
        (kitti / 'label_2' / f'{i:06d}.txt').write_text('Car nan\n')
    with pytest.raises(EmptyDatasetError) as info:
        build('kitti_detection.py', data_root=str(kitti),
              on_bad_sample='skip', max_bad_fraction=1.0)
    assert str(info.value).startswith(
        f'KittiDataset: no usable samples under {kitti}: all 3 records were '
        'bad and skipped')
    # and within the default max_bad_fraction (0.1) one bad file of three
    # stops the load with the counts
    (kitti / 'label_2' / '000000.txt').write_text(GOOD_KITTI + '\n')
    (kitti / 'label_2' / '000001.txt').write_text(GOOD_KITTI + '\n')
    with pytest.raises(BadSampleError, match=r'1 of 3 records .* bad '
                       r'\(33% > max_bad_fraction=0\.1\)'):
        build('kitti_detection.py', data_root=str(kitti),
              on_bad_sample='skip')


# -- BDD100K ------------------------------------------------------------------


@pytest.fixture
def bdd(tmp_path):
    root = tmp_path / 'bdd100k'
    frames = json.load(open(os.path.join(FIXTURES, 'bdd100k', 'det_val.json')))
    (root / 'labels').mkdir(parents=True)
    (root / 'images').mkdir()
    for frame in frames:
        Image.new('RGB', (1280, 720)).save(root / 'images' / frame['name'])
    return root, frames


def _bdd(bdd, edit, **cfg):
    root, frames = bdd
    frames = json.loads(json.dumps(frames))
    edit(frames)
    (root / 'labels' / 'bad.json').write_text(json.dumps(frames))
    return dict(data_root=str(root), ann_file='labels/bad.json',
                img_dir='images', **cfg)


def _box2d(frames, **values):
    frames[0]['labels'][0]['box2d'].update(values)


@pytest.mark.parametrize('values,match', [
    (dict(x1='1000.7'), 'box2d must be numbers'),
    (dict(y2=True), 'box2d must be numbers'),
    (dict(x2=math.nan), 'non-finite'),
    (dict(x2=10.0), 'negative or zero size'),
])
def test_bdd100k_bad_box(bdd, values, match):
    cfg = _bdd(bdd, lambda f: _box2d(f, **values))
    check('bdd100k_detection.py', match, 'bad.json: frame 0', 2, **cfg)


def test_bdd100k_missing_image_with_known_shape(bdd):
    root, frames = bdd
    os.remove(root / 'images' / frames[1]['name'])
    cfg = _bdd(bdd, lambda f: None, img_shape=(720, 1280))
    check('bdd100k_detection.py', 'is missing', frames[1]['name'], 2, **cfg)


# -- COCO ---------------------------------------------------------------------


@pytest.fixture
def coco(tmp_path):
    root = tmp_path / 'coco'
    shutil.copytree(os.path.join(FIXTURES, 'coco'), root)
    return root


def _coco(root, edit):
    path = root / 'instances_mini.json'
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return dict(data_root=str(root), ann_file='instances_mini.json',
                img_dir='')


@pytest.mark.parametrize('bbox,match', [
    (['473.07', 395.93, 38.65, 28.67], 'must be numbers'),
    ([473.07, 395.93, math.nan, 28.67], 'non-finite'),
    ([473.07, 395.93, 38.65], 'must be 4 numbers'),
    ([473.07, 395.93, -38.65, 28.67], 'negative or zero size'),
])
def test_coco_bad_bbox(coco, bbox, match):
    cfg = _coco(coco, lambda d: d['annotations'][0].update(bbox=bbox))
    check('coco_detection.py', match, 'annotations[0]', 3, **cfg)


def test_coco_bad_image_size(coco):
    cfg = _coco(coco, lambda d: d['images'][0].update(width='640'))
    check('coco_detection.py', 'height, width must be numbers',
          'images[0]', 3, **cfg)


def test_coco_annotation_of_no_image(coco):
    def dangle(data):
        data['annotations'].append(dict(data['annotations'][0], id=777,
                                        image_id=424242))
    cfg = _coco(coco, dangle)
    check('coco_detection.py', 'image_id 424242 is not in images',
          'annotations[', 4, **cfg)


def test_coco_without_images_is_one_line(coco):
    cfg = _coco(coco, lambda d: (d['images'].clear(),
                                 d['annotations'].clear()))
    with pytest.raises(EmptyDatasetError, match=r'CocoDetDataset: no usable '
                       r'samples under .*coco: the reader found no records'):
        build('coco_detection.py', **cfg)


# -- nuImages / nuScenes ------------------------------------------------------


def _nu_edit(root, table, fn):
    path = root / 'v1.0-mini' / f'{table}.json'
    rows = json.loads(path.read_text())
    fn(rows)
    path.write_text(json.dumps(rows))
    return dict(data_root=str(root), version='v1.0-mini', filters=None)


def test_nuimages_bad_bbox_and_dangling_sample_data(tmp_path):
    root = tmp_path / 'nuimages'
    shutil.copytree(os.path.join(FIXTURES, 'nuimages'), root)
    cfg = _nu_edit(root, 'object_ann',
                   lambda r: r[0].update(bbox=['100', 400, 400, 600]))
    check('nuimages_detection.py', 'must be numbers', 'token oa-1', 1, **cfg)
    cfg = _nu_edit(root, 'object_ann', lambda r: (
        r[0].update(bbox=[100, 400, 400, 600]),
        r.append(dict(r[0], token='oa-9', sample_data_token='gone'))))
    check('nuimages_detection.py', 'sample_data_token gone is not in any '
          'table', 'token oa-9', 2, **cfg)


@pytest.mark.parametrize('field,value,match', [
    ('translation', [373.214, math.nan, 1.25], 'translation holds a '
     'non-finite'),
    ('translation', ['373.214', 1130.48, 1.25], 'translation must be '
     'numbers'),
    ('size', [0.621, 0.669], r'size \(width, length, height\) must be 3'),
    ('size', [0.621, -0.669, 1.642], 'must be positive sizes'),
    ('rotation', [0, 0, 0, 0], 'zero quaternion'),
])
def test_nuscenes_bad_annotation(tmp_path, field, value, match):
    """The fixture's one camera image: skipping it leaves nothing."""
    root = tmp_path / 'nuscenes'
    shutil.copytree(os.path.join(FIXTURES, 'nuscenes'), root)
    cfg = _nu_edit(root, 'sample_annotation',
                   lambda r: r[0].update({field: value}))
    check('nuimages_detection.py', match,
          'token 70aecbe9b64f4722ab3c230391a3beb8', None, **cfg)


def test_nuscenes_annotation_of_no_sample(tmp_path):
    root = tmp_path / 'nuscenes'
    shutil.copytree(os.path.join(FIXTURES, 'nuscenes'), root)
    cfg = _nu_edit(root, 'sample_annotation', lambda r: r.append(
        dict(r[0], token='ann-9', sample_token='no-such-sample')))
    check('nuimages_detection.py', 'sample_token no-such-sample is not in '
          'any table', 'token ann-9', 1, **cfg)


def test_nuscenes_bad_ego_pose(tmp_path):
    root = tmp_path / 'nuscenes'
    shutil.copytree(os.path.join(FIXTURES, 'nuscenes'), root)
    cfg = _nu_edit(root, 'ego_pose',
                   lambda r: r[0].update(translation=[math.nan, 0, 0]))
    check('nuimages_detection.py', 'translation holds a non-finite',
          'ego_pose.json', None, **cfg)
