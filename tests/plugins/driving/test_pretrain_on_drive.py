"""The driving pretraining configs train on a generated drive through
`perception train` (the issue-9 done-when, kept as a regression test)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from perception.cli import main
from perception_driving.synth import generate_drive

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope='module')
def drive_video(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp('drive')
    generate_drive(str(out), seed=3, frames=4, size=(256, 128),
                   formats=('video', ))
    video = out / 'video' / 'front.mp4'
    assert video.is_file()
    return str(video)


@pytest.mark.parametrize('config', [
    'mae_vit-tiny-p16_1xb32-400e_driving-256x512.py',
    'fcmae_convnext-atto_1xb32-400e_driving-256x512.py'])
def test_driving_pretraining_config_trains_on_a_generated_drive(
        tmp_path, drive_video, config):
    work = tmp_path / 'work'
    status = main([
        'train', str(REPO / 'configs' / 'pretrain' / config),
        '--work-dir', str(work), '--cfg-options',
        f"train_dataloader.dataset.source=['{drive_video}']",
        'train_dataloader.dataset.stride=1',
        f'train_dataloader.dataset.cache_dir={tmp_path / "cache"}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1'
    ])
    assert status == 0
    checkpoint = torch.load(work / 'epoch_1.pth', weights_only=True)
    assert checkpoint['meta']['pretrained_cfg']['input_size'][-2:] in (
        [256, 512], (256, 512))
    assert len(os.listdir(tmp_path / 'cache')) == 1  # frames cached once
