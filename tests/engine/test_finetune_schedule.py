"""configs/_base_/schedules/finetune_detection.py through the real runner
(perception train / test): layer decay, CPU AMP, gradient clipping, EMA
and early stopping work together; the checkpoint holds the EMA weights and
loads safely."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from perception.cli import all_commands
from perception.data import write_shape_images
from perception.fileio import load_checkpoint_file, resolve_checkpoint

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / 'configs' / '_base_'


def _config(folder: Path, data_root: str) -> str:
    """A tiny classifier on the fine-tuning schedule (a detector's would
    take minutes); its timm ResNet's layers come from timm's
    group_matcher, under ``net.``."""
    lines = [
        '_base_ = [' + ', '.join(repr(str(BASE / p)) for p in (
            'datasets/shapes_64.py', 'schedules/finetune_detection.py',
            'default_runtime.py')) + ']',
        f'data_root = {data_root!r}',
        "model = dict(type='TimmClassifier', model_name='test_resnet', "
        'num_classes=3)',
        "pipeline = [dict(type='LoadImage'), dict(type='PackInputs')]",
        'train_dataloader = dict(batch_size=3, dataset=dict('
        'data_root=data_root, pipeline=pipeline))',
        'val_dataloader = dict(batch_size=6, dataset=dict('
        'data_root=data_root))',
        'test_dataloader = val_dataloader',
        # a scratch net: the schedule's scope 'pretrained' would not decay
        # it (tests/engine/test_optim_constructors.py); 'always' does
        'optim_wrapper = dict(paramwise_cfg=dict(backbone_prefix="net.", '
        'layer_decay_type="stage", layer_decay_scope="always"))',
        'max_epochs = 4',
        'train_cfg = dict(max_epochs=max_epochs)',
        'param_scheduler = [_base_.param_scheduler[0], '
        'dict(_base_.param_scheduler[1], end=max_epochs)]',
        # never "improves" by 1000 points: epoch 2 of 4 is the last
        'custom_hooks = [_base_.ema_hook, dict(_base_.early_stopping_hook, '
        "monitor='accuracy/top1', min_delta=1000.0, patience=1)]",
        'default_hooks = dict(logger=dict(interval=1))',
        "vis_backends = [dict(type='LocalVisBackend')]",
        'visualizer = dict(vis_backends=vis_backends)',
    ]
    path = folder / 'finetune_tiny.py'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def _scalars(work_dir: str) -> list[dict]:
    records = []
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(os.path.join(root, 'scalars.json')) as f:
                records += [json.loads(line) for line in f]
    return records


def test_finetune_schedule_with_amp_clip_ema_early_stopping(tmp_path):
    data = tmp_path / 'shapes'
    write_shape_images(str(data), n_per_class=2, size=32, seed=0)
    config = _config(tmp_path, str(data))
    work_dir = str(tmp_path / 'run')
    commands = all_commands()
    assert commands['train'].main([config, '--work-dir', work_dir,
                                   '--amp']) == 0
    # early stopping: epoch 2 of 4 is the last
    checkpoint = resolve_checkpoint(work_dir)
    assert os.path.basename(checkpoint) == 'epoch_2.pth'
    records = [r for r in _scalars(work_dir) if 'loss' in r]
    assert records and all('grad_norm' in r for r in records)  # clip_grad
    # warm-up from 1e-3 of the base lr; the logged lr is the head's group
    assert records[0]['lr'] < 1e-5 < records[-1]['lr'] <= 1e-3

    ckpt = load_checkpoint_file(checkpoint)     # weights_only: safe
    ema = ckpt['ema_state_dict']
    assert int(ema['steps']) == 4               # 2 epochs x 2 iterations
    # the saved state_dict is the averaged model's (used by test, export)
    state = ckpt['state_dict']
    key = 'net.fc.weight'
    assert not torch.equal(state[key], ema[f'module.{key}'])
    groups = ckpt['optimizer']['param_groups']
    assert groups[0]['name'].startswith('layer_') and groups[0]['lr_scale'] == 1
    assert min(g['lr_scale'] for g in groups) == 0.75 ** 5
    assert commands['test'].main([config, work_dir, '--work-dir',
                                  str(tmp_path / 'test')]) == 0
