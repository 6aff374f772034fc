"""Bdd100kDataset on BDD100K's documented label format.

Fixture ``fixtures/bdd100k``:
* ``det_val.json``, frame 0: the first val frame ``b1c66a42-6f7d68ca.jpg``
  (overcast, daytime, city street, timestamp 10000, label id "0", traffic
  sign, box2d x1 1000.698742 y1 281.992415 x2 1040.626872 y2 326.91156),
  in the det_20 shape; fields as listed by BDD100K's label format document
  (ucbdrive/bdd100k doc/format.md: name, attributes weather/scene/
  timeofday, timestamp, labels[id, category, attributes occluded/
  truncated/trafficLightColor, box2d x1/y1/x2/y2]).
* ``labels_2018_val.json``: the same frame in the 2018 format
  (``manualShape``/``manualAttributes``, integer id), as quoted in
  FiftyOne's BDD importer documentation.
* hand-made frames: occluded/truncated boxes, a box on the last pixel
  column, "other vehicle" (ignored by BDD100K's own evaluation), a lane
  (poly2d, no box2d) and ``"labels": null``.
"""
import json
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
FIXTURE = os.path.join(HERE, 'fixtures', 'bdd100k')
NAMES = ('b1c66a42-6f7d68ca.jpg', 'edge-0001.jpg', 'edge-0002.jpg')


@pytest.fixture
def bdd_root(tmp_path):
    root = tmp_path / 'bdd100k'
    shutil.copytree(FIXTURE, root / 'labels')
    (root / 'images').mkdir()
    for name in NAMES:
        Image.new('RGB', (1280, 720), (80, 80, 80)).save(root / 'images' /
                                                         name)
    return root


def _build(root, ann='labels/det_val.json', **overrides):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', '_base_', 'datasets',
                                       'bdd100k_detection.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(dict(dict(data_root=str(root), ann_file=ann,
                            img_dir='images', on_bad_sample='error',
                            serialize_data=False), **overrides))
    return DATASETS.build(ds_cfg)


def test_documented_record_through_config(bdd_root):
    ds = _build(bdd_root)
    assert len(ds) == 3
    info = ds.get_data_info(0)
    # inclusive last pixel -> pixel edge
    np.testing.assert_allclose(info['gt_bboxes'], [[1000.698742, 281.992415,
                                                    1041.626872, 327.91156]],
                               atol=1e-3)
    assert ds.metainfo['classes'][info['gt_labels'][0]] == 'traffic sign'
    assert (info['weather'], info['timeofday'], info['scene']) == (
        'overcast', 'daytime', 'city street')
    assert info['timestamp_ns'] == 10000 * 10**6
    assert info['instance_attributes'][0]['trafficLightColor'] == 'NA'
    packed = ds[0]  # through the augmentation pipeline
    assert packed['data_samples'].metainfo['weather'] == 'overcast'
    assert tuple(packed['inputs'].shape[1:]) == (384, 640)


def test_2018_format_gives_the_same_box(bdd_root):
    new = _build(bdd_root).get_data_info(0)
    old = _build(bdd_root, ann='labels/labels_2018_val.json').get_data_info(0)
    np.testing.assert_array_equal(new['gt_bboxes'], old['gt_bboxes'])
    assert old['gt_labels'].tolist() == new['gt_labels'].tolist()


def test_edge_frames(bdd_root):
    ds = _build(bdd_root, filters=dict(max_occlusion=0))
    info = ds.get_data_info(1)
    classes = ds.metainfo['classes']
    names = [classes[i] if i >= 0 else 'any' for i in info['gt_labels']]
    assert names == ['car', 'truck', 'traffic light', 'any']
    # occluded car -> ignore by filter; other vehicle -> ignore by the map
    assert info['gt_ignore_flags'].tolist() == [True, False, False, True]
    assert info['gt_bboxes'][1].tolist() == [1100, 300, 1280, 601]
    assert ds.no_box2d == 1  # the lane is reported, not silently used
    empty = ds.get_data_info(2)  # "labels": null
    assert empty['gt_bboxes'].shape == (0, 4)
    assert 'other vehicle' in ds.class_counts.table()


def _write(root, frames):
    (root / 'labels' / 'bad.json').write_text(json.dumps(frames))


def test_crowd_attribute_is_an_ignore_region(bdd_root):
    crowd = dict(id='1', category='pedestrian', attributes=dict(crowd=True),
                 box2d=dict(x1=10, y1=10, x2=99, y2=199))
    single = dict(id='2', category='pedestrian', attributes=dict(crowd=False),
                  box2d=dict(x1=300, y1=10, x2=339, y2=109))
    _write(bdd_root, [dict(name=NAMES[0], labels=[crowd, single])])
    info = _build(bdd_root, ann='labels/bad.json').get_data_info(0)
    assert info['gt_ignore_flags'].tolist() == [True, False]
    assert info['gt_bboxes'][0].tolist() == [10, 10, 100, 200]


def test_bad_input_names_file_frame_and_label(bdd_root):
    frame = dict(name=NAMES[0], labels=[dict(id='7', category='car',
                                             box2d=dict(x1=5, y1=5, x2=2,
                                                        y2=9))])
    _write(bdd_root, [frame])
    with pytest.raises(BadSampleError, match=r'bad\.json: frame 0 '
                       r'\(b1c66a42-6f7d68ca\.jpg\): labels\[0\] \(id 7\): '
                       'box .* negative or zero size'):
        _build(bdd_root, ann='labels/bad.json')
    frame['labels'][0]['box2d'] = dict(x1=5, y1=5, x2=20)
    _write(bdd_root, [frame])
    with pytest.raises(BadSampleError, match=r"lacks field 'y2'"):
        _build(bdd_root, ann='labels/bad.json')
    frame['labels'][0]['box2d'] = dict(x1=5, y1=5, x2=1500, y2=20)
    _write(bdd_root, [frame, dict(name=NAMES[1], labels=None)])
    with pytest.raises(BadSampleError, match='outside the 1280x720 image'):
        _build(bdd_root, ann='labels/bad.json')
    ds = _build(bdd_root, ann='labels/bad.json', on_bad_sample='skip', max_bad_fraction=1.0)
    assert len(ds) == 1 and 'outside' in ds.bad_samples[0]


def test_missing_image_and_unknown_class(bdd_root):
    _write(bdd_root, [dict(name='gone.jpg', labels=None)])
    with pytest.raises(BadSampleError, match=r'gone\.jpg: image file is '
                       'missing'):
        _build(bdd_root, ann='labels/bad.json', img_shape=None)
    _write(bdd_root, [dict(name=NAMES[0], labels=[dict(
        category='tram', box2d=dict(x1=1, y1=1, x2=5, y2=5))])])
    with pytest.raises(UnmappedClassError, match=r"bad\.json: frame 0 .*"
                       r"class 'tram' is not in the class map"):
        _build(bdd_root, ann='labels/bad.json', on_bad_sample='skip', max_bad_fraction=1.0)
    (bdd_root / 'labels' / 'broken.json').write_text('[{"name": ')
    with pytest.raises(ValueError, match=r'broken\.json: not valid JSON at '
                       'line 1'):
        _build(bdd_root, ann='labels/broken.json')
