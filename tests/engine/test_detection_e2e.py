"""`perception train` then `perception test` of a tiny detection config on a
generated drive: AP in the log, COCO results with --out, pictures with
--show-dir; a config whose classes contradict the data is one line, exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from perception.cli import main

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip('perception_driving', reason='the KITTI reader lives in '
                    'the driving plugin')


@pytest.fixture(scope='module')
def drive(tmp_path_factory):
    out = tmp_path_factory.mktemp('drive') / 'd'
    assert main(['synth-drive', str(out), '--seed', '5', '--frames', '4',
                 '--size', '256', '144', '--cameras', '1',
                 '--formats', 'kitti']) == 0
    return out / 'kitti'


def _config(tmp_path: Path, drive: Path, **extra: str) -> Path:
    root = str(drive / 'training') + '/'
    classes = extra.get('classes', 'None')
    text = f'''
_base_ = ['{REPO}/configs/_base_/models/det_convnext-atto_fpn.py',
          '{REPO}/configs/_base_/datasets/synth_drives_kitti.py',
          '{REPO}/configs/_base_/schedules/adamw_3e.py',
          '{REPO}/configs/_base_/default_runtime.py']
model = dict(backbone=dict(_delete_=True, type='ConvNeXt', out_indices=(1, 2, 3),
                           arch=dict(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48))),
             neck=dict(in_channels=[24, 32, 48], out_channels=32),
             head=dict(in_channels=32, feat_channels=32))
if {classes} is not None:
    model['class_names'] = {classes}
input_scale = (256, 144)
def _data(pipeline, test_mode):
    return dict(_delete_=True, type='KittiDataset', data_root='{root}',
                class_map='{drive}/class_map.yaml', test_mode=test_mode,
                filters=dict(min_height=8), pipeline=pipeline)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=_data([dict(type='LoadImage'), dict(type='PackInputs')], False))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=_data([dict(type='LoadImage'), dict(type='Resize',
        scale=(192, 108), keep_ratio=True), dict(type='PackInputs')], True))
test_dataloader = val_dataloader
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
'''
    path = tmp_path / 'tiny_det.py'
    path.write_text(text)
    return path


def test_train_then_test_prints_ap_and_writes_results(tmp_path, drive,
                                                      capsys):
    config = _config(tmp_path, drive)
    work = tmp_path / 'work'
    assert main(['train', str(config), '--work-dir', str(work)]) == 0
    out = tmp_path / 'results.json'
    pictures = tmp_path / 'pictures'
    assert main(['test', str(config), str(work), '--work-dir', str(work),
                 '--out', str(out), '--show-dir', str(pictures)]) == 0
    log = capsys.readouterr().out
    assert 'coco/AP: ' in log and 'coco/AP50: ' in log  # the test's metrics
    detections = json.loads(out.read_text())
    assert isinstance(detections, list)
    for det in detections[:5]:
        assert set(det) == {'image_id', 'category_id', 'bbox', 'score'}
        assert det['bbox'][0] >= 0 and det['bbox'][0] + det['bbox'][2] <= 256
    gt = json.loads((tmp_path / 'results.gt.json').read_text())
    assert [c['name'] for c in gt['categories']][:3] == [
        'pedestrian', 'rider', 'car']
    assert {img['width'] for img in gt['images']} == {256}  # source pixels
    assert len(list(pictures.glob('*.png'))) == 4


def test_class_names_that_differ_from_the_data_are_one_line(tmp_path, drive,
                                                           capsys):
    config = _config(tmp_path, drive, classes="['car', 'pedestrian']")
    status = main(['train', str(config), '--work-dir', str(tmp_path / 'w')])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith('perception train: error: ')
    assert 'num_classes' in err or 'class_names' in err
    assert 'Traceback' not in err


def test_a_config_that_does_not_merge_is_one_line(tmp_path, capsys):
    config = tmp_path / 'bad.py'
    config.write_text(f"_base_ = ['{REPO}/configs/_base_/models/"
                      "det_convnext-atto_fpn.py']\n"
                      "model = dict(backbone=dict(arch=dict(depths=(1,))))\n")
    assert main(['train', str(config), '--work-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'perception train: error: {config}: arch=')
    assert '_delete_=True' in err and 'Traceback' not in err
