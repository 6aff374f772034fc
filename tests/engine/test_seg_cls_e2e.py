"""`perception train` then `perception test` of a tiny segmentation config
(label maps of a generated drive: mIoU in the log, one picture per frame
with the mask over the source image) and of a tiny scene classifier (day vs
night drives: accuracy in the log); `perception browse` of the
segmentation config."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perception.cli import main

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip('perception_driving', reason='the readers live in the '
                    'driving plugin')
TINY_CONVNEXT = '''dict(_delete_=True, type='ConvNeXt', out_indices=(0, 1, 2, 3),
    arch=dict(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48)))'''
LOADERS = '''
train_pipeline = [dict(type='LoadImage'), dict(type='LoadSegMap'),
                  dict(type='RandomFlip', prob=0.5),
                  dict(type='Resize', scale=(128, 72), keep_ratio=True),
                  dict(type='PackInputs')]
test_pipeline = [dict(type='LoadImage'),
                 dict(type='Resize', scale=(128, 72), keep_ratio=True),
                 dict(type='LoadSegMap'), dict(type='PackInputs')]
if not SEG:
    train_pipeline = [t for t in train_pipeline if t['type'] != 'LoadSegMap']
    test_pipeline = [t for t in test_pipeline if t['type'] != 'LoadSegMap']
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=_data(TRAIN, train_pipeline, False))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=_data(TEST, test_pipeline, True))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=4, val_interval=4)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
optim_wrapper = dict(optimizer=dict(lr=3e-3))
default_hooks = dict(logger=dict(type='LoggerHook', interval=2))
'''


@pytest.fixture(scope='module')
def drives(tmp_path_factory):
    root = tmp_path_factory.mktemp('drives')
    for name, seed, lighting in (('day', 5, 'day'), ('night', 6, 'night')):
        assert main(['synth-drive', str(root / name), '--seed', str(seed),
                     '--frames', '3', '--size', '160', '96', '--cameras',
                     '1', '--lighting', lighting, '--formats', 'bdd100k',
                     'cityscapes']) == 0
    return root


def _seg_config(tmp_path: Path, drives: Path) -> Path:
    base = REPO / ('configs/segmentation/fpnseg_vit-tiny-p16_simplefpn_'
                   '1000it-20min_synth-drives-semseg.py')
    text = f'''
_base_ = ['{base}']
TRAIN, TEST, SEG = ['{drives}/day'], ['{drives}/night'], True
def _data(roots, pipeline, test_mode):
    return dict(_delete_=True, type='ConcatDataset', datasets=[dict(
        type='CityscapesDataset', data_root=r + '/cityscapes',
        class_map=r + '/cityscapes/class_map.yaml', test_mode=test_mode,
        pipeline=pipeline) for r in roots])
model = dict(backbone={TINY_CONVNEXT},
             neck=dict(_delete_=True, type='FPN', in_channels=[16, 24, 32, 48],
                       out_channels=32, in_indices=(0, 1, 2, 3)),
             head=dict(in_channels=32, channels=32))
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-3))
{LOADERS}'''
    path = tmp_path / 'tiny_seg.py'
    path.write_text(text)
    return path


def test_segmentation_train_then_test(tmp_path, drives, capsys):
    config = _seg_config(tmp_path, drives)
    work, pictures = tmp_path / 'work', tmp_path / 'pictures'
    assert main(['train', str(config), '--work-dir', str(work)]) == 0
    assert main(['test', str(config), str(work), '--work-dir', str(work),
                 '--show-dir', str(pictures)]) == 0
    log = capsys.readouterr().out
    assert 'seg/mIoU: ' in log and 'seg/IoU.road: ' in log
    shown = sorted(pictures.glob('*.png'))
    assert len(shown) == 3
    picture = np.asarray(Image.open(shown[0]).convert('RGB'))
    source = np.asarray(Image.open(
        drives / 'night/cityscapes/leftImg8bit/train/synth/'
        '000000_leftImg8bit.png').convert('RGB'))
    # drawn on the source image (160x96), enlarged 3x to be read (>= 512)
    assert picture.shape == (source.shape[0] * 3, source.shape[1] * 3, 3)
    source = source.repeat(3, axis=0).repeat(3, axis=1)
    assert np.abs(picture.astype(int) - source).mean() > 5  # mask blended


def _cls_config(tmp_path: Path, drives: Path) -> Path:
    base = REPO / ('configs/classification/mlp_vit-tiny-p16_500it-20min_'
                   'synth-drives-timeofday.py')
    text = f'''
_base_ = ['{base}']
TRAIN = TEST = ['{drives}/day', '{drives}/night']
SEG = False
def _data(roots, pipeline, test_mode):
    return dict(_delete_=True, type='ConcatDataset', datasets=[dict(
        type='Bdd100kSceneDataset', data_root=r + '/bdd100k',
        ann_file='labels/det_20/det_train.json',
        data_prefix=dict(img='images/100k/train'), attribute='timeofday',
        classes=['daytime', 'night'], test_mode=test_mode,
        pipeline=pipeline) for r in roots])
model = dict(class_names=['daytime', 'night'],
             backbone=dict({TINY_CONVNEXT}, out_indices=(3, )),
             head=dict(in_channels=48, hidden_channels=(32, )))
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-3))
{LOADERS}'''
    path = tmp_path / 'tiny_cls.py'
    path.write_text(text)
    return path


def test_classification_train_then_test(tmp_path, drives, capsys):
    config = _cls_config(tmp_path, drives)
    work, pictures = tmp_path / 'work', tmp_path / 'pictures'
    assert main(['train', str(config), '--work-dir', str(work)]) == 0
    assert main(['test', str(config), str(work), '--work-dir', str(work),
                 '--show-dir', str(pictures)]) == 0
    log = capsys.readouterr().out
    assert 'accuracy/top1: ' in log
    assert len(list(pictures.glob('*.png'))) == 6


def test_browse_draws_label_maps_of_a_concat_dataset(tmp_path, drives):
    config = _seg_config(tmp_path, drives)  # a ConcatDataset of drives
    out = tmp_path / 'browse'
    assert main(['browse', str(config), '--n', '2', '--out', str(out)]) == 0
    assert len(list(out.glob('train_*.png'))) == 2
