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
