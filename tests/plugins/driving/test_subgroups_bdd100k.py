"""`perception test` of a tiny detector on BDD100K-format data with the
subgroup report: AP50 by timeofday and weather (the frame attributes the
reader keeps), the table in the log, the JSON under the work dir, the
smallest group suppressed; the overall row equals the wrapped metric."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from perception.cli import main
from perception.registry import MODELS

REPO = Path(__file__).resolve().parents[3]
pytest.importorskip('perception_driving', reason='Bdd100kDataset lives in '
                    'the driving plugin')

#: frames per (timeofday, weather); dawn/dusk is below min_group_size.
PLAN = [('daytime', 'clear')] * 5 + [('night', 'rainy')] * 4 + [
    ('dawn/dusk', 'clear')] * 2


@pytest.fixture(scope='module')
def bdd(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('bdd100k')
    images = root / 'images' / '100k' / 'val'
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frames = []
    for i, (timeofday, weather) in enumerate(PLAN):
        name = f'{i:04d}.jpg'
        pixels = rng.integers(0, 255, (96, 128, 3), np.uint8)
        pixels[30:70, 40:90] = (200, 40, 40)
        Image.fromarray(pixels).save(images / name)
        frames.append({'name': name, 'attributes': {
            'weather': weather, 'scene': 'city street',
            'timeofday': timeofday},
            'labels': [{'id': '1', 'category': 'car',
                        'box2d': {'x1': 40, 'y1': 30, 'x2': 89,
                                  'y2': 69}}]})
    labels = root / 'labels' / 'det_20'
    labels.mkdir(parents=True)
    (labels / 'det_val.json').write_text(json.dumps(frames))
    return root


def _config(tmp_path: Path, bdd: Path) -> Path:
    text = f'''
_base_ = ['{REPO}/configs/_base_/models/det_convnext-atto_fpn.py',
          '{REPO}/configs/_base_/datasets/bdd100k_detection.py',
          '{REPO}/configs/_base_/schedules/adamw_3e.py',
          '{REPO}/configs/_base_/default_runtime.py']
model = dict(backbone=dict(_delete_=True, type='ConvNeXt', out_indices=(1, 2, 3),
                           arch=dict(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48))),
             neck=dict(in_channels=[24, 32, 48], out_channels=32),
             head=dict(in_channels=32, feat_channels=32))
data = dict(type='Bdd100kDataset', data_root='{bdd}/',
            ann_file='labels/det_20/det_val.json', img_dir='images/100k/val')
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data, _delete_=True, pipeline=[dict(type='LoadImage'),
                                                dict(type='PackInputs')]))
test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data, _delete_=True, test_mode=True, pipeline=[
        dict(type='LoadImage'), dict(type='Resize', scale=(96, 72)),
        dict(type='PackInputs', meta_keys=(
            'img_path', 'img_shape', 'ori_shape', 'scale_factor',
            'homography_matrix', 'sample_idx', 'weather', 'timeofday'))]))
val_dataloader = test_dataloader
test_evaluator = dict(_delete_=True, type='SubgroupMetric',
    metric=dict(type='CocoMetric'), key='AP50',
    fields=['timeofday', 'weather'], min_group_size=3, n_boot=10,
    out='subgroups.json')
val_evaluator = test_evaluator
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
'''
    path = tmp_path / 'tiny_bdd.py'
    path.write_text(text)
    return path


def test_perception_test_writes_the_subgroup_report(tmp_path, bdd, capsys):
    config = _config(tmp_path, bdd)
    work = tmp_path / 'work'
    work.mkdir()
    # an untrained detector is enough: the report's wiring is under test
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(config)).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}},
               work / 'untrained.pth')
    assert main(['test', str(config), str(work / 'untrained.pth'),
                 '--work-dir', str(work)]) == 0
    log = capsys.readouterr().out
    assert 'subgroup report: coco/AP50' in log and 'coco/AP: ' in log
    report = json.loads((work / 'subgroups.json').read_text())
    assert report['metric'] == 'coco/AP50' and report['n_boot'] == 10
    assert report['overall']['n'] == len(PLAN)
    rows = {(g['field'], g['value']): g for g in report['groups']}
    assert rows['timeofday', 'daytime']['n'] == 5
    assert rows['timeofday', 'night']['n'] == 4
    assert rows['timeofday', 'dawn/dusk']['suppressed']
    assert rows['timeofday', 'dawn/dusk']['n'] is None
    assert rows['weather', 'clear']['n'] == 7
    assert rows['weather', 'rainy']['n'] == 4
    overall = float(next(line for line in log.splitlines()
                         if 'coco/AP50: ' in line).split(
        'coco/AP50: ')[1].split()[0])
    assert report['overall']['metric'] == pytest.approx(overall, abs=1e-4)
    for row in rows.values():
        if not row['suppressed']:
            assert row['ci_low'] <= row['metric'] + 1e-9
            assert row['metric'] <= row['ci_high'] + 1e-9
            assert row['gap'] == pytest.approx(
                row['metric'] - report['overall']['metric'])
