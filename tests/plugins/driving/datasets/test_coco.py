"""CocoDetDataset on the COCO data format.

Fixture ``fixtures/coco/instances_mini.json``: images[0] and annotations[0]
of COCO's instances_val2017.json (image 397133, 640 x 427; annotation 1768:
bbox [473.07, 395.93, 38.65, 28.67], area 702.1057499999998, category 18
dog, image 289343 - its size hand-set here, its polygon shortened), in the
layout of the COCO "data format" page (images / annotations / categories,
bbox [x, y, width, height], iscrowd 0 or 1). No ``info`` key. Hand-made: a
crowd box, a fractional box, an image without annotations.
"""
import json
import os
import shutil

import numpy as np
import pytest
from mmengine.config import Config

import perception_driving
from perception.data import BadSampleError
from perception.registry import DATASETS
from perception_driving.datasets import UnmappedClassError

perception_driving.register()  # the readers register in DATASETS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
FIXTURE = os.path.join(HERE, 'fixtures', 'coco')


def _build(root, ann='instances_mini.json', **overrides):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', '_base_', 'datasets',
                                       'coco_detection.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.update(dict(dict(data_root=str(root), ann_file=ann, img_dir='',
                            on_bad_sample='error', serialize_data=False),
                       **overrides))
    return DATASETS.build(ds_cfg)


def test_loads_through_config_with_driving_map():
    ds = _build(FIXTURE)
    assert len(ds) == 4
    assert ds.get_data_info(1)['gt_bboxes'].shape == (0, 4)  # dog dropped
    crowd = ds.get_data_info(2)
    classes = ds.metainfo['classes']
    assert [classes[i] for i in crowd['gt_labels']] == [
        'pedestrian', 'pedestrian', 'car']
    assert crowd['gt_ignore_flags'].tolist() == [False, True, False]
    np.testing.assert_allclose(crowd['gt_bboxes'][2],
                               [200.5, 120.25, 300.5, 200.25])
    assert 'dog' in ds.class_counts.table()


def test_own_categories_keep_the_dog():
    ds = _build(FIXTURE, class_map=None)
    assert ds.metainfo['classes'] == ('person', 'car', 'dog')
    info = ds.get_data_info(1)
    assert info['img_id'] == 289343 and info['gt_labels'].tolist() == [2]
    # xywh -> pixel-edge xyxy
    np.testing.assert_allclose(info['gt_bboxes'],
                               [[473.07, 395.93, 511.72, 424.60]], atol=1e-4)


@pytest.fixture
def coco_copy(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / 'coco')
    return tmp_path / 'coco'


def _edit(root, fn):
    path = root / 'instances_mini.json'
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_bad_annotations_are_named(coco_copy):
    _edit(coco_copy, lambda d: d['annotations'][1].update(bbox=[5, 5, -3,
                                                                10]))
    with pytest.raises(BadSampleError, match=r'annotations\[1\] \(id 70\): '
                       'box .* negative or zero size'):
        _build(coco_copy)
    assert len(_build(coco_copy, on_bad_sample='skip', max_bad_fraction=1.0)) == 3
    _edit(coco_copy, lambda d: d['annotations'][1].update(
        bbox=[5, 5, 3, 10], category_id=99))
    with pytest.raises(BadSampleError, match='category_id 99 is not in '
                       'categories'):
        _build(coco_copy)
    _edit(coco_copy, lambda d: d['annotations'][1].update(category_id=1)
          or d['categories'].append(dict(id=99, name='zeppelin')) or
          d['annotations'][1].update(category_id=99))
    with pytest.raises(UnmappedClassError, match="class 'zeppelin'"):
        _build(coco_copy)
    _edit(coco_copy, lambda d: d.pop('categories'))
    with pytest.raises(ValueError, match="table 'categories' is missing"):
        _build(coco_copy)


def test_metric_on_its_own_ann_file_gives_perfect_score(tmp_path):
    """CocoDetDataset -> pipeline -> CocoMetric(ann_file=...) with the
    ground truth as predictions: AP 1 (crowd box ignored, no 'info' key)."""
    from PIL import Image

    from perception.data.transforms import DEFAULT_META_KEYS
    from perception.evaluation import CocoMetric
    root = tmp_path / 'coco'
    shutil.copytree(FIXTURE, root)
    coco = json.loads((root / 'instances_mini.json').read_text())
    for img in coco['images']:
        Image.new('RGB', (img['width'], img['height'])).save(
            root / img['file_name'])
    ds = _build(root, class_map=None, pipeline=[
        dict(type='LoadImage'),
        dict(type='PackInputs', meta_keys=DEFAULT_META_KEYS + ('img_id', ))])
    metric = CocoMetric(ann_file=str(root / 'instances_mini.json'))
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        gt = sample.gt_instances
        keep = ~gt.ignore_flags
        pred = gt[keep].clone()
        pred.scores = pred.bboxes.new_ones(len(pred))
        sample.pred_instances = pred
        samples.append(sample)
    metric.process({}, samples)
    result = metric.evaluate(len(samples))
    assert result['coco/AP'] == pytest.approx(1.0)
    assert result['coco/AP_dog'] == pytest.approx(1.0)
