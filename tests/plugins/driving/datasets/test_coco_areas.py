"""COCO's size bins end to end: a COCO file (some annotations with a
segmentation-like ``area``, some without, one 32 x 32 box at fractional
coordinates, exactly on the small/medium edge) read by CocoDetDataset
through the config's val pipeline (a resize), evaluated by CocoMetric
without the annotation file: every number equals pycocotools run on the
file itself with the same detections."""
import contextlib
import io
import json
import os

import pytest
from mmengine.config import Config
from PIL import Image

import perception_driving
from perception.data.geometry import PRED_SPACE_KEY
from perception.evaluation.coco_metric import STAT_NAMES, CocoMetric
from perception.registry import DATASETS
from perception.structures import make_instances

perception_driving.register()
pytest.importorskip('pycocotools', reason='pycocotools is the reference')

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))

# image id -> [(bbox xywh, area or None, category id)]
ANNS = {
    1: [([10.1, 20.3, 32, 32], None, 1), ([100, 20, 100, 100], 5000.0, 1),
        ([60, 120, 20, 20], None, 2)],
    2: [([10, 10, 40, 40], 800.0, 2), ([150, 40, 96, 96], 9000.0, 1),
        ([220.5, 150.25, 64, 64], None, 1)],
}
# (image id, bbox xywh, score, category id): one hit per object, one miss
DETS = [
    (1, [11.1, 21.3, 30, 30], 0.5, 1), (1, [102, 22, 96, 96], 0.8, 1),
    (1, [61, 121, 18, 18], 0.7, 2), (1, [250, 200, 40, 30], 0.6, 1),
    (2, [12, 12, 36, 36], 0.9, 2), (2, [152, 42, 92, 92], 0.95, 1),
    (2, [222.5, 152.25, 60, 60], 0.4, 1),
]


@pytest.fixture
def coco(tmp_path):
    images, anns = [], []
    for image_id, objects in ANNS.items():
        name = f'{image_id}.png'
        Image.new('RGB', (320, 240)).save(tmp_path / name)
        images.append(dict(id=image_id, file_name=name, width=320,
                           height=240))
        for bbox, area, cat in objects:
            ann = dict(id=len(anns) + 1, image_id=image_id, category_id=cat,
                       bbox=bbox, iscrowd=0)
            if area is not None:
                ann['area'] = area
            anns.append(ann)
    data = dict(images=images, annotations=anns,
                categories=[dict(id=1, name='car'),
                            dict(id=2, name='person')])
    (tmp_path / 'ann.json').write_text(json.dumps(data))
    return tmp_path, data


def pycocotools_numbers(data: dict) -> dict:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = json.loads(json.dumps(data))
    for ann in gt['annotations']:  # pycocotools needs an area: w*h if none
        ann.setdefault('area', ann['bbox'][2] * ann['bbox'][3])
    dets = [dict(image_id=i, bbox=b, score=s, category_id=c)
            for i, b, s, c in DETS]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = gt
        truth.createIndex()
        ev = COCOeval(truth, truth.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(STAT_NAMES, ev.stats))


def test_size_bins_through_the_reader_equal_pycocotools(coco):
    root, data = coco
    cfg = Config.fromfile(os.path.join(REPO, 'configs', '_base_',
                                       'datasets', 'coco_detection.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.update(data_root=str(root), ann_file='ann.json', img_dir='',
                  class_map=None, serialize_data=False)
    ds = DATASETS.build(ds_cfg)
    samples = []
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        assert sample.img_shape != (240, 320)  # resized: boxes map back
        dets = [d for d in DETS if d[0] == sample.img_id]
        sample.pred_instances = make_instances(
            [[x, y, x + w, y + h] for _, (x, y, w, h), _, _ in dets],
            [ds.metainfo['classes'].index(data['categories'][c - 1]['name'])
             for *_, c in dets], scores=[d[2] for d in dets])
        sample.set_metainfo({PRED_SPACE_KEY: 'source'})
        samples.append(sample)
    metric = CocoMetric(classwise=False)
    metric.dataset_meta = ds.metainfo
    metric.process({}, samples)
    got = metric.evaluate(len(samples))
    ref = pycocotools_numbers(data)
    for name in STAT_NAMES:
        assert got[f'coco/{name}'] == pytest.approx(ref[name], abs=1e-9), name
