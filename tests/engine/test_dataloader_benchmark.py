"""``perception benchmark dataloader CONFIG`` on a tiny MAE config over
generated images: the JSON's fields, the ratio computed from them, uint8
inputs, and a bad config path as one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from perception.cli.benchmark import BenchmarkCommand

CONFIG = '''
default_scope = 'perception'
model = dict(
    type='MAE',
    backbone=dict(type='VisionTransformer', arch=dict(embed_dim=32, depth=1,
                  num_heads=2), img_size=32, patch_size=8),
    decoder=dict(embed_dim=32, depth=1, num_heads=2))
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root={root!r},
                 pipeline=[dict(type='LoadImage'),
                           dict(type='RandomResizedCrop', size=32),
                           dict(type='RandomFlip', prob=0.5),
                           dict(type='PackInputs')]))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, fused=True))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10)
amp = 'off'
'''


@pytest.fixture
def tiny_config(tmp_path):
    root = tmp_path / 'images'
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), np.uint8)).save(
            root / f'{i}.png')
    path = tmp_path / 'tiny_mae.py'
    path.write_text(CONFIG.format(root=str(root)))
    return str(path)


def test_json_shape_ratio_and_uint8(tiny_config, tmp_path, capsys):
    out = tmp_path / 'result.json'
    status = BenchmarkCommand().main(
        ['dataloader', tiny_config, '--quiet', '--batches', '3', '--steps',
         '2', '--json', str(out)])
    assert status == 0
    result = json.loads(out.read_text())
    assert {'config', 'batch_size', 'num_workers', 'loader_s_per_batch',
            'loader_batches_per_s', 'loader_startup_s', 'step_s',
            'steps_per_s', 'ratio', 'target_ratio', 'meets_target',
            'inputs_dtype', 'precision'} <= set(result)
    assert result['batch_size'] == 4 and result['num_workers'] == 0
    assert result['ratio'] == pytest.approx(
        result['step_s'] / result['loader_s_per_batch'])
    assert result['ratio'] == pytest.approx(
        result['loader_batches_per_s'] / result['steps_per_s'])
    assert result['meets_target'] == (result['ratio'] >= 3.0)
    assert result['inputs_dtype'] == 'torch.uint8'
    assert 'fp32' in result['precision']
    printed = capsys.readouterr().out
    assert f"ratio batches/s over steps/s: {result['ratio']:.2f}x" in printed


def test_missing_config_is_one_line(tmp_path, capsys):
    status = BenchmarkCommand().main(
        ['dataloader', str(tmp_path / 'nope.py'), '--quiet'])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and 'nope.py' in err
