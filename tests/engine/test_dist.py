"""`--launcher pytorch` on CPU: two processes under torchrun talk over gloo
(mmengine alone would call torch.cuda.set_device and use nccl)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from perception.data import write_shape_images

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / 'configs' / 'smoke' / 'tiny_classifier.py'


# ~20 s alone on 2 cores (two interpreters, mmengine start-up), far more
# when the machine is shared.
@pytest.mark.slow
def test_two_process_gloo_training_under_torchrun(tmp_path):
    data = tmp_path / 'shapes'
    write_shape_images(str(data), n_per_class=4, size=32, seed=0)
    cfg = tmp_path / 'ddp.py'
    cfg.write_text(
        f'_base_ = [{str(SMOKE)!r}]\n'
        f'train_dataloader = dict(batch_size=4, dataset=dict('
        f'data_root={str(data)!r}))\n'
        f'val_dataloader = dict(dataset=dict(data_root={str(data)!r}))\n'
        'test_dataloader = val_dataloader\n'
        'train_cfg = dict(max_epochs=1)\n'
        "visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])\n")
    script = Path(sys.executable).with_name('perception')
    program = [str(script) if script.exists() else
               str(REPO / 'tools' / 'train.py')]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone',
         '--nproc-per-node', '2', *program, 'train', str(cfg),
         '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'work')],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert 'Distributed training: True' in output
    # 12 images over 2 ranks at batch 4: 2 iterations each, not 3
    assert 'Epoch(train) [1][2/2]' in output, output[-3000:]
    ckpt = torch.load(tmp_path / 'work' / 'epoch_1.pth', weights_only=True)
    assert ckpt['meta']['epoch'] == 1


# -- the same training on 1 and 2 processes ---------------------------------
# test_convnext has LayerNorm only (no BatchNorm, whose per-rank batch
# statistics would differ), no random transform, fp32: 2 ranks at batch 2
# see each step the same 4 images as 1 process at batch 4 (DefaultSampler
# gives rank r every second index of the same shuffled order), and DDP
# averages their gradients, so the weights must agree to rounding.
EQUIVALENT_RUN = '''_base_ = [{smoke!r}]
model = dict(model_name='test_convnext')
train_pipeline = [dict(type='LoadImage'), dict(type='PackInputs')]
train_dataloader = dict(batch_size={batch}, dataset=dict(
    data_root={data!r}, pipeline=train_pipeline))
val_dataloader = dict(batch_size=3, dataset=dict(data_root={data!r}))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2, val_interval=1)
amp = 'off'
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
'''
FSDP = ("model_wrapper_cfg = dict(type='FullyShardedWrapper', "
        "shard_modules=['ConvNeXtStage'])\n")


def _perception(args, tmp_path, nproc=1, timeout=600):
    script = Path(sys.executable).with_name('perception')
    program = [str(script) if script.exists() else
               str(REPO / 'tools' / 'train.py')]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    launch = ([sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc-per-node', str(nproc)] if nproc > 1 else [])
    extra = ['--launcher', 'pytorch'] if nproc > 1 else []
    result = subprocess.run([*launch, *program, *args, *extra], cwd=tmp_path,
                            env=env, capture_output=True, text=True,
                            timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def _top1(output: str) -> list[float]:
    import re
    return [float(v) for v in re.findall(r'accuracy/top1: ([\d.]+)', output)]


@pytest.fixture(scope='module')
def equivalent_runs(tmp_path_factory):
    """Single process at batch 4; DDP and FSDP on 2 processes at batch 2;
    a 2-process test run with pictures and a predictions file."""
    tmp_path = tmp_path_factory.mktemp('dist')
    data = tmp_path / 'shapes'
    write_shape_images(str(data), n_per_class=4, size=32, seed=0)
    runs = {}
    for name, batch, nproc, extra in (('single', 4, 1, ''),
                                      ('ddp', 2, 2, ''),
                                      ('fsdp', 2, 2, FSDP)):
        cfg = tmp_path / f'{name}.py'
        cfg.write_text(EQUIVALENT_RUN.format(smoke=str(SMOKE), batch=batch,
                                             data=str(data)) + extra)
        work = tmp_path / f'work_{name}'
        output = _perception(['train', str(cfg), '--work-dir', str(work)],
                             tmp_path, nproc)
        runs[name] = dict(work=work, output=output, cfg=cfg)
    test_out = _perception(
        ['test', str(runs['ddp']['cfg']), str(runs['ddp']['work']),
         '--work-dir', str(tmp_path / 'work_test'), '--out',
         str(tmp_path / 'preds.json'), '--show-dir', str(tmp_path / 'pics')],
        tmp_path, 2)
    runs['test'] = dict(output=test_out, preds=tmp_path / 'preds.json',
                        pics=tmp_path / 'pics')
    return runs


def _weights(work: Path) -> dict:
    return torch.load(work / 'epoch_2.pth', weights_only=True)['state_dict']


@pytest.mark.slow
@pytest.mark.parametrize('name', ['ddp', 'fsdp'])
def test_two_processes_match_one_with_the_doubled_batch(equivalent_runs,
                                                        name):
    run = equivalent_runs[name]
    assert 'Distributed training: True' in run['output']
    # 12 images, batch 2 on each of 2 ranks: 3 iterations an epoch
    assert 'Epoch(train) [2][3/3]' in run['output'], run['output'][-3000:]
    single, multi = (_weights(equivalent_runs['single']['work']),
                     _weights(run['work']))
    assert set(single) == set(multi)
    start = torch.load(run['work'] / 'epoch_1.pth', weights_only=True)
    moved = max(float((single[k] - start['state_dict'][k]).abs().max())
                for k in single if single[k].is_floating_point())
    assert moved > 1e-3  # the weights did train between the checkpoints
    for key in single:
        torch.testing.assert_close(multi[key], single[key], rtol=1e-4,
                                   atol=2e-5, msg=lambda m: f'{key}: {m}')
    # validation metrics gathered over both ranks' halves: the same numbers
    assert _top1(run['output']) == _top1(equivalent_runs['single']['output'])
    if name == 'fsdp':
        assert start['meta']['fsdp'] == dict(world_size=2,
                                             full_state_dict=True)
        assert start['optimizer']['state']  # gathered optimizer state


@pytest.mark.slow
def test_two_process_test_run_gathers_and_rank0_writes(equivalent_runs):
    import json
    test = equivalent_runs['test']
    predictions = json.loads(test['preds'].read_text())
    assert len(predictions) == 12  # both ranks' predictions, once each
    assert _top1(test['output'])[-1] == _top1(
        equivalent_runs['single']['output'])[-1]
    pictures = sorted(p.name for p in test['pics'].iterdir())
    # rank 0's share only (6 of 12), each written once
    assert len(pictures) == 6, pictures


@pytest.mark.slow
def test_gathered_val_accuracy_equals_a_test_of_the_checkpoint(tmp_path):
    """The smoke model (resnet10t) has BatchNorm: each rank's running
    statistics differ, so they are averaged (SyncBuffersHook) before the
    checkpoint is saved and before validation; the validation accuracy
    gathered over 2 ranks is then that of a 1-process test of the saved
    checkpoint. (Without it: 51.04 in validation, 52.08 in the test.)"""
    data = tmp_path / 'smoke'
    write_shape_images(str(data), seed=0)  # what `perception synth-images` writes
    cfg = tmp_path / 'bn.py'
    cfg.write_text(f'_base_ = [{str(SMOKE)!r}]\n'
                   f'train_dataloader = dict(dataset=dict(data_root={str(data)!r}))\n'
                   f'val_dataloader = dict(dataset=dict(data_root={str(data)!r}))\n'
                   'test_dataloader = val_dataloader\n'
                   "visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])\n")
    work = tmp_path / 'work'
    trained = _perception(['train', str(cfg), '--work-dir', str(work)],
                          tmp_path, 2)
    tested = _perception(['test', str(cfg), str(work), '--work-dir',
                          str(tmp_path / 'test')], tmp_path, 1)
    assert _top1(trained)[-1] == _top1(tested)[-1], (_top1(trained),
                                                     _top1(tested))
