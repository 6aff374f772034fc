"""``perception benchmark pretrain``: the config's fused AdamW (same
numbers as the per-parameter loop), ``--reference-dir`` (a missing checkout
is one line and exit 2; a checkout is adapted to today's NumPy and timm in
memory), and the ratio lines."""
from __future__ import annotations

import os

import pytest
import torch
from mmengine.config import Config

from perception.cli.benchmark import BenchmarkCommand
from perception.errors import UserError
from perception.registry import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

# A stand-in for facebookresearch/mae at commit efb2a80: the same two
# import lines, np.float in pos_embed, qk_scale passed to timm's Block, the
# same constructor and forward signature. Tiny, so the benchmark runs fast.
POS_EMBED = '''
import numpy as np

def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    omega = np.arange(embed_dim // 2, dtype=np.float)
    return np.zeros((grid_size * grid_size + cls_token, embed_dim)) + omega.mean()
'''
MODELS_MAE = '''
import torch
import torch.nn as nn

from timm.models.vision_transformer import PatchEmbed, Block

from util.pos_embed import get_2d_sincos_pos_embed


class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3,
                 embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16,
                 mlp_ratio=4., norm_layer=nn.LayerNorm, norm_pix_loss=False):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.block = Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True,
                           qk_scale=None, norm_layer=norm_layer)
        pos = get_2d_sincos_pos_embed(embed_dim, img_size // patch_size)
        self.register_buffer('pos', torch.from_numpy(pos).float()[None])

    def forward(self, imgs, mask_ratio=0.75):
        x = self.block(self.patch_embed(imgs) + self.pos)
        loss = (x ** 2).mean()
        return loss, x, torch.ones(x.shape[:2])
'''


def write_reference(root):
    (root / 'util').mkdir(parents=True)
    (root / 'util' / 'pos_embed.py').write_text(POS_EMBED)
    (root / 'models_mae.py').write_text(MODELS_MAE)
    return root


def test_config_optimizer_is_the_benchmarks_and_fused():
    from perception_mim.benchmarks import MAE_OPTIMIZER
    for name in ('pretrain/mae_vit-tiny_p16_224.py',
                 '_base_/schedules/mae_adamw_1xb32-400e.py'):
        cfg = Config.fromfile(os.path.join(ROOT, 'configs', name))
        optimizer = dict(cfg.optim_wrapper.optimizer)
        optimizer.pop('lr')
        assert optimizer == MAE_OPTIMIZER, name


def test_fused_adamw_matches_the_per_parameter_loop():
    # the speed-up must not change the training: 5 MAE steps, same losses
    def losses(**optimizer_kwargs):
        torch.manual_seed(0)
        model = MODELS.build(dict(
            type='MAE', backbone=dict(type='VisionTransformer', arch=dict(
                embed_dim=32, depth=2, num_heads=2), img_size=32,
                patch_size=8), decoder=dict(embed_dim=32, depth=1,
                                            num_heads=2)))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95),
                                weight_decay=0.05, **optimizer_kwargs)
        images = torch.randn(4, 3, 32, 32)
        out = []
        for _ in range(5):
            torch.manual_seed(1)  # same masks in both runs
            opt.zero_grad()
            loss = model(images, mode='loss')['loss']
            loss.backward()
            opt.step()
            out.append(loss.item())
        return torch.tensor(out)

    looped, fused = losses(foreach=False), losses(fused=True)
    assert looped[0] != looped[-1]  # it trains
    torch.testing.assert_close(fused, looped, rtol=1e-5, atol=1e-6)


def test_reference_dir_missing_is_one_line_and_exit_2(tmp_path, capsys):
    status = BenchmarkCommand().main(
        ['pretrain', '--reference-dir', str(tmp_path / 'nope')])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1
    assert 'nope' in err and 'facebookresearch/mae' in err


def test_reference_of_another_version_is_named(tmp_path):
    from perception_mim.reference import load_reference_mae
    root = write_reference(tmp_path / 'mae')
    (root / 'models_mae.py').write_text('import torch\n')
    with pytest.raises(UserError, match='no longer has'):
        load_reference_mae(str(root))


def test_benchmark_runs_with_a_reference_checkout(tmp_path, capsys):
    root = write_reference(tmp_path / 'mae')
    status = BenchmarkCommand().main(
        ['pretrain', '--quiet', '--reference-dir', str(root), '--batch', '2',
         '--size', '32', '--repeats', '1', '--warmup', '0', '--threads', '1'])
    out = capsys.readouterr().out
    assert status == 0
    assert 'reference MAE (facebookresearch), fp32' in out
    assert 'speed-up over the reference, fp32 vs fp32' in out


def test_speed_ratios():
    from perception_mim.benchmarks import speed_ratios
    lines = speed_ratios(dict(full=4.0, fp32=1.0, bf16=0.5, ref32=1.5,
                              ref16=0.8))
    text = '\n'.join(lines)
    assert 'bf16 / fp32 MAE step: 0.500' in text
    assert 'MAE fp32 / full-token fp32: 0.250' in text
    assert 'fp32 vs fp32: 1.500x' in text
    assert 'bf16 vs bf16: 1.600x' in text
    assert 'default precision (bf16): 3.000x' in text
    no_bf16 = '\n'.join(speed_ratios(dict(full=4.0, fp32=1.0, ref32=1.5)))
    assert 'bf16 vs bf16' not in no_bf16 and 'bf16 / fp32' not in no_bf16
    assert 'default precision (fp32): 1.500x' in no_bf16


def test_adapted_reference_code(tmp_path):
    from perception_mim.reference import load_reference_mae
    models = load_reference_mae(str(write_reference(tmp_path / 'mae')))
    model = models.MaskedAutoencoderViT(img_size=32, patch_size=16,
                                        embed_dim=16, num_heads=2)
    loss, pred, mask = model(torch.randn(1, 3, 32, 32))
    assert pred.shape == (1, 4, 16) and loss.ndim == 0
