"""`perception train` on the MAE config (shrunk): the held-out
masked-patch loss in the log, reconstruction pictures, pretrained_cfg in
the checkpoint, export of the result; the benchmark command runs."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
from mmengine.config import Config
from PIL import Image

from perception.cli import main
from perception_mim.hooks import reconstruction_grid, to_display
from perception_mim.synth import write_pretrain_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _small_config(tmp_path, data) -> str:
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'pretrain',
                                       'mae_vit-tiny_p16_224.py'))
    cfg.model.backbone.update(arch=dict(embed_dim=32, depth=2, num_heads=2),
                              img_size=64)
    cfg.model.decoder.update(embed_dim=32, depth=1, num_heads=2)
    cfg.train_dataloader.update(batch_size=4, num_workers=0,
                                persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = str(data / 'train')
    cfg.train_dataloader.dataset.pipeline[1].size = 64
    cfg.val_dataloader.dataset.data_root = str(data / 'val')
    cfg.val_dataloader.dataset.pipeline[1].scale = (64, 64)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=4, val_interval=2)
    cfg.param_scheduler[0].end = 2
    cfg.param_scheduler[1].begin = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.custom_hooks[0].interval = 2
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    path = str(tmp_path / 'mae_small.py')
    cfg.dump(path)
    return path


def test_train_logs_heldout_loss_and_writes_pictures(tmp_path):
    data = tmp_path / 'data'
    write_pretrain_images(str(data / 'train'), 8, size=64, seed=0)
    write_pretrain_images(str(data / 'val'), 4, size=64, seed=1)
    work = tmp_path / 'work'
    assert main(['train', _small_config(tmp_path, data),
                 '--work-dir', str(work)]) == 0
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    assert 'mim/masked_patch_loss' in log and 'mim/mean_patch_loss' in log
    pictures = sorted(glob.glob(str(work / 'reconstructions' / '*.png')))
    assert [os.path.basename(p) for p in pictures] == [
        'iter_000002.png', 'iter_000004.png']
    grid = np.asarray(Image.open(pictures[-1]))
    assert grid.shape == (4 * 66, 4 * 66, 3)     # 4 images x 4 panels
    ckpt = str(work / 'iter_4.pth')
    import torch
    meta = torch.load(ckpt, weights_only=True, map_location='cpu')['meta']
    assert meta['pretrained_cfg']['architecture'] == 'vit_base_patch16_224'
    assert meta['pretrained_cfg']['input_size'] == [3, 64, 64]
    assert main(['export-backbone', ckpt, str(tmp_path / 'exp')]) == 0
    config = json.loads((tmp_path / 'exp' / 'config.json').read_text())
    assert config['model_args']['embed_dim'] == 32


def test_ct_pictures_show_windowed_slices():
    """1-channel windowed input: shown grey, as the window displays it."""
    import torch

    from perception.registry import MODELS
    model = MODELS.build(dict(
        type='MAE', backbone=dict(type='VisionTransformer', arch=dict(
            embed_dim=32, depth=1, num_heads=2), img_size=32, patch_size=8,
            in_chans=1),
        decoder=dict(embed_dim=32, depth=1, num_heads=2),
        data_preprocessor=dict(windows=[(40, 400)], mean=[0.5], std=[0.25])))
    hu = torch.full((1, 1, 32, 32), -1000.0)     # air -> black
    hu[..., 16:] = 240.0                         # top of the window: white
    data = model.data_preprocessor(dict(inputs=hu))
    shown = to_display(data['inputs'], model.data_preprocessor)
    assert shown.shape == (1, 32, 32, 3)
    assert shown[0, 0, 0].tolist() == [0, 0, 0]
    assert shown[0, 0, 31].tolist() == [255, 255, 255]
    grid = reconstruction_grid(model, data['inputs'])
    assert grid.shape == (34, 4 * 34, 3)
    # original panel == display of the windowed slice
    assert np.array_equal(grid[:32, :32], shown[0])


def test_benchmark_runs_small(capsys):
    assert main(['benchmark', 'pretrain', '--batch', '2', '--size', '32',
                 '--repeats', '1', '--warmup', '0', '--threads', '1']) == 0
    out = capsys.readouterr().out
    assert '| timm ViT-Tiny, all tokens, fp32 |' in out
    assert 'FLOP ratio' in out and 'MAE fp32 / full-token fp32' in out
