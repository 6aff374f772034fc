"""NuImagesDataset: nuImages object_ann boxes and nuScenes 3D boxes
projected into camera images, parsed without the devkit.

Fixtures follow the schemas of nutonomy/nuscenes-devkit (docs/
schema_nuimages.md, schema_nuscenes.md). Quoted records:
* nuScenes ``sample_annotation`` 70aecbe9b64f4722ab3c230391a3beb8 (the
  schema/tutorial example: human.pedestrian.adult, translation [373.214,
  1130.48, 1.25], size [0.621, 0.669, 1.642], rotation [0.98311, 0, 0,
  -0.18302], visibility "4");
* nuScenes ``calibrated_sensor`` 2e64b091b3b146a390c2606b9081343c of
  CAM_FRONT (translation, rotation, camera_intrinsic as printed by the
  devkit); the four ``visibility`` levels.
Hand-made: the ego pose (10 m behind the pedestrian, facing +x), a car
behind the ego vehicle, a truck cut by the left image edge, and a nuImages
log with CAM_FRONT/CAM_BACK key frames, a sweep, a cone and the ego
vehicle.
"""
import json
import os
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from scipy.spatial.transform import Rotation

import perception_driving
from perception.data import BadSampleError
from perception.registry import DATASETS

perception_driving.register()  # the readers register in DATASETS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
FIXTURES = os.path.join(HERE, 'fixtures')


def _build(root, **overrides):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', '_base_', 'datasets',
                                       'nuimages_detection.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(dict(dict(data_root=str(root), version='v1.0-mini',
                            filters=None, on_bad_sample='error',
                            serialize_data=False), **overrides))
    return DATASETS.build(ds_cfg)


def _pose(rec):
    m = np.eye(4)
    w, x, y, z = rec['rotation']
    m[:3, :3] = Rotation.from_quat([x, y, z, w]).as_matrix()
    m[:3, 3] = rec['translation']
    return m


def _expected_pedestrian_box():
    """The same projection written with 4x4 matrices and scipy."""
    tables = os.path.join(FIXTURES, 'nuscenes', 'v1.0-mini')
    load = lambda t: json.load(open(os.path.join(tables, t + '.json')))  # noqa
    ann, cs = load('sample_annotation')[0], load('calibrated_sensor')[0]
    ego = load('ego_pose')[0]
    width, length, height = ann['size']
    corners = np.array([[sx * length / 2, sy * width / 2, sz * height / 2, 1]
                        for sx in (1, -1) for sy in (1, -1) for sz in (1, -1)])
    world = _pose(ann) @ corners.T
    cam = np.linalg.inv(_pose(cs)) @ np.linalg.inv(_pose(ego)) @ world
    pix = np.asarray(cs['camera_intrinsic']) @ cam[:3]
    pix = pix[:2] / pix[2]
    return np.concatenate([pix.min(1), pix.max(1)])


def test_nuscenes_projection_through_config():
    ds = _build(os.path.join(FIXTURES, 'nuscenes'))
    assert ds.mode == 'nuscenes' and len(ds) == 1  # the lidar is skipped
    info = ds.get_data_info(0)
    classes = ds.metainfo['classes']
    assert [classes[i] for i in info['gt_labels']] == ['pedestrian', 'truck']
    np.testing.assert_allclose(info['gt_bboxes'][0],
                               _expected_pedestrian_box(), atol=1e-2)
    # about 8.3 m in front of CAM_FRONT, near the principal point
    assert 790 < info['gt_bboxes'][0][[0, 2]].mean() < 840
    # the truck is cut by the left image edge; the car behind is absent
    assert info['gt_bboxes'][1][0] == 0
    assert info['camera'] == 'CAM_FRONT'
    assert info['timestamp_ns'] == 1532402927612460 * 1000
    assert info['instance_attributes'][0] == ['pedestrian.moving']
    np.testing.assert_allclose(info['intrinsics'][0, 0], 1266.4172, atol=1e-3)


def test_nuscenes_visibility_filter():
    ds = _build(os.path.join(FIXTURES, 'nuscenes'),
                filters=dict(min_visibility=0.4))
    # pedestrian v80-100 kept, truck v0-40 ignored
    assert ds.get_data_info(0)['gt_ignore_flags'].tolist() == [False, True]


def test_nuimages_boxes_cameras_and_drops():
    ds = _build(os.path.join(FIXTURES, 'nuimages'))
    assert ds.mode == 'nuimages' and len(ds) == 2  # the sweep is skipped
    front = ds.get_data_info(0)
    classes = ds.metainfo['classes']
    assert front['camera'] == 'CAM_FRONT'
    assert [classes[i] for i in front['gt_labels']] == ['car', 'pedestrian']
    assert front['gt_bboxes'].tolist() == [[100, 400, 400, 600],
                                           [800, 380, 840, 500]]
    assert front['instance_attributes'][0] == ['vehicle.parked']
    assert ds.get_data_info(1)['gt_bboxes'].shape == (0, 4)  # ego dropped
    table = ds.class_counts.table()
    assert 'vehicle.ego' in table and 'movable_object.trafficcone' in table
    only_back = _build(os.path.join(FIXTURES, 'nuimages'),
                       cameras=['CAM_BACK'])
    assert [only_back.get_data_info(i)['camera']
            for i in range(len(only_back))] == ['CAM_BACK']


@pytest.fixture
def nuimages_copy(tmp_path):
    root = tmp_path / 'nuimages'
    shutil.copytree(os.path.join(FIXTURES, 'nuimages'), root)
    return root


def _edit(root, table, fn):
    path = root / 'v1.0-mini' / f'{table}.json'
    rows = json.loads(path.read_text())
    fn(rows)
    path.write_text(json.dumps(rows))


def test_schema_drift_names_table_and_field(nuimages_copy):
    _edit(nuimages_copy, 'object_ann', lambda rows: rows[1].pop('bbox'))
    with pytest.raises(ValueError, match=r"object_ann\.json: record oa-2 "
                       r"lacks field 'bbox'"):
        _build(nuimages_copy)


def test_dangling_token_and_missing_table(nuimages_copy):
    _edit(nuimages_copy, 'object_ann',
          lambda rows: rows[0].update(category_token='nope'))
    with pytest.raises(BadSampleError, match='token nope not found in table '
                       'category'):
        _build(nuimages_copy)
    assert len(_build(nuimages_copy, on_bad_sample='skip', max_bad_fraction=1.0)) == 1
    os.remove(nuimages_copy / 'v1.0-mini' / 'sensor.json')
    with pytest.raises(FileNotFoundError, match='table sensor is missing'):
        _build(nuimages_copy)
