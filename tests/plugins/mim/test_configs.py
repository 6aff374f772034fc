"""The pretraining configs load and build; the MAE recipe's parameter
groups; the benchmark's model is the config's."""
from __future__ import annotations

import glob
import os

import pytest
from mmengine.config import Config

from perception.data import PretrainedCfg
from perception.registry import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'pretrain',
                                        '*.py')))


def test_the_named_configs_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {'mae_vit-tiny_p16_224.py',
            'mae_vit-tiny-p16_1xb32-400e_driving-256x512.py',
            'mae_vit-tiny-p16_1xb32-400e_ct-1ch.py',
            'fcmae_convnext-atto_1xb32-400e_driving-256x512.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_loads_and_model_builds(path):
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    pcfg = PretrainedCfg.from_model(
        model, cfg.val_dataloader.dataset.pipeline if 'val_dataloader' in cfg
        else ())
    name = os.path.basename(path)
    if 'ct-1ch' in name:
        assert cfg.train_dataloader.dataset.type == 'DicomSliceDataset'
        assert pcfg.in_chans == 1 and pcfg.windows == [(-600, 1500)]
        assert pcfg.channel_meaning == ['lung']
    if 'driving' in name:
        assert cfg.train_dataloader.dataset.type == 'CameraFeedDataset'
        assert pcfg.input_size == (3, 256, 512)
    if name == 'mae_vit-tiny_p16_224.py':
        assert cfg.train_dataloader.dataset.type == 'ImageFolderDataset'
        bb = model.backbone
        assert (bb.patch_size, bb.embed_dim, len(bb.blocks),
                bb.blocks[0].attn.num_heads) == (16, 192, 12, 3)
        assert bb.blocks[0].mlp.fc1.out_features == 4 * 192
        dec = model.decoder
        assert (dec.embed_dim, len(dec.blocks),
                dec.blocks[0].attn.num_heads) == (128, 4, 4)
        assert model.mask_ratio == 0.75 and model.norm_pix_loss
        assert pcfg.input_size == (3, 224, 224)


def test_benchmark_model_is_the_config_model():
    from perception_mim.benchmarks import MAE_VIT_TINY
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'pretrain',
                                       'mae_vit-tiny_p16_224.py'))
    for key, value in MAE_VIT_TINY.items():
        if key == 'backbone':
            assert {k: cfg.model.backbone[k] for k in value} == value
        else:
            assert cfg.model[key] == value, key


def test_mae_recipe_weight_decay_groups():
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(CONFIGS[CONFIGS.index(os.path.join(
        ROOT, 'configs', 'pretrain', 'mae_vit-tiny_p16_224.py'))])
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert abs(wrapper.optimizer.defaults['lr'] - 1.5e-4 * 32 / 256) < 1e-12
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[names[id(p)]] = group['weight_decay']
    assert decay['backbone.blocks.0.attn.qkv.weight'] == 0.05
    assert decay['decoder.pred.weight'] == 0.05
    for name in ('backbone.blocks.0.attn.qkv.bias', 'backbone.norm.weight',
                 'backbone.cls_token', 'decoder.mask_token',
                 'backbone.blocks.3.norm1.weight'):
        assert decay[name] == 0.0, name
