"""Hand-over: encoder weights into the fine-tuning backbone and, through
`perception export-backbone`, into timm, with identical features."""
from __future__ import annotations

import json

import pytest
import timm
import torch

from perception.data import PretrainedCfg
from perception.models.backbones import VisionTransformer
from perception.registry import MODELS
from perception_mim.commands import ExportBackboneCommand

TINY_VIT = dict(embed_dim=32, depth=2, num_heads=2)   # as in conftest


def _save(model, path, with_cfg=True):
    meta = dict(pretrained_cfg=PretrainedCfg.from_model(model).to_dict()) \
        if with_cfg else {}
    torch.save(dict(meta=meta, state_dict=model.state_dict()), path)


def _train_a_little(model, x):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.1)
    loss = model(x, mode='loss')['loss']
    loss.backward()
    opt.step()


@pytest.mark.parametrize('chans,size', [(3, 32), (1, (32, 64))])
def test_mae_encoder_into_backbone_and_timm(tmp_path, chans, size,
                                           make_mae):
    mae = make_mae(in_chans=chans, img_size=size, data_preprocessor=dict(
        mean=[0.5] * chans, std=[0.25] * chans,
        windows=[(-600, 1500)] if chans == 1 else None))
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(2, chans, h, w)
    _train_a_little(mae, x)
    mae.eval()
    ckpt = str(tmp_path / 'iter_1.pth')
    _save(mae, ckpt)
    reference = mae.backbone(x)[0]

    # 1. the core backbone through init_cfg (decoder dropped, reported)
    backbone = MODELS.build(dict(
        type='VisionTransformer', arch=TINY_VIT, img_size=size, patch_size=8,
        in_chans=chans, init_cfg=dict(type='Pretrained', checkpoint=ckpt)))
    backbone.init_weights()
    assert backbone.load_report['missing'] == []
    assert backbone.load_report['unexpected'] == []
    assert any(k.startswith('decoder.') for k in
               backbone.load_report['dropped'])
    torch.testing.assert_close(backbone.eval()(x)[0], reference)

    # 2. export-backbone -> timm, both ways of loading
    out = tmp_path / 'export'
    assert ExportBackboneCommand().main([ckpt, str(out)]) == 0
    config = json.loads((out / 'config.json').read_text())
    assert config['perception']['input_size'] == [chans, h, w]
    if chans == 1:
        assert config['perception']['windows'] == [[-600.0, 1500.0]]
        assert config['pretrained_cfg']['mean'] == [0.5]   # [0, 1] scale
    model = timm.create_model(f'local-dir:{out}', pretrained=True).eval()
    tokens = model.forward_features(x)[:, 1:]
    ours = reference.flatten(2).transpose(1, 2)
    torch.testing.assert_close(tokens, ours)
    model2 = timm.create_model(
        config['architecture'], pretrained=True, num_classes=0,
        pretrained_cfg_overlay=dict(file=str(out / 'model.safetensors')),
        **config['model_args']).eval()
    torch.testing.assert_close(model2.forward_features(x)[:, 1:], ours)


def test_vit_tiny_export_loads_by_timm_name(tmp_path):
    """The real config's encoder is timm's vit_tiny_patch16_224."""
    mae = MODELS.build(dict(
        type='MAE', backbone=dict(type='VisionTransformer', arch='tiny'),
        decoder=dict(embed_dim=32, depth=1, num_heads=2))).eval()
    ckpt = str(tmp_path / 'mae.pth')
    _save(mae, ckpt)
    assert ExportBackboneCommand().main([ckpt, str(tmp_path / 'o')]) == 0
    vit = timm.create_model(
        'vit_tiny_patch16_224', pretrained=True, num_classes=0,
        pretrained_cfg_overlay=dict(
            file=str(tmp_path / 'o' / 'model.safetensors'))).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(
        vit.forward_features(x)[:, 1:],
        mae.backbone(x)[0].flatten(2).transpose(1, 2))


def test_fcmae_encoder_into_timm(tmp_path):
    model = MODELS.build(dict(
        type='FCMAE', backbone=dict(type='ConvNeXt', arch='atto'),
        decoder=dict(embed_dim=32))).eval()
    ckpt = str(tmp_path / 'f.pth')
    _save(model, ckpt)
    assert ExportBackboneCommand().main([ckpt, str(tmp_path / 'o')]) == 0
    net = timm.create_model(f"local-dir:{tmp_path / 'o'}",
                            pretrained=True).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(net.forward_features(x),
                               model.backbone(x)[-1])


def test_export_errors_name_file_and_fix(tmp_path, capsys, make_mae):
    mae = make_mae()
    ckpt = str(tmp_path / 'nocfg.pth')
    _save(mae, ckpt, with_cfg=False)
    assert ExportBackboneCommand().main([ckpt, str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err  # a user error: one line, exit 2
    assert 'nocfg.pth' in err and 'pretrained_cfg' in err
    assert err.startswith('perception export-backbone: error: ')
    assert 'Traceback' not in err
    ckpt2 = str(tmp_path / 'ok.pth')
    _save(mae, ckpt2)
    assert ExportBackboneCommand().main(
        [ckpt2, str(tmp_path / 'o'), '--prefix', 'encoder.']) == 2
    assert "--prefix" in capsys.readouterr().err
    assert ExportBackboneCommand().main(
        [str(tmp_path / 'missing.pth'), str(tmp_path / 'o')]) == 2
    assert 'missing.pth' in capsys.readouterr().err


def test_fine_tuning_backbone_other_size(tmp_path, make_mae):
    """Pretrained at 32x32, fine-tuned at 48x64: sin-cos positions are
    rebuilt for the new grid, every other weight carried over."""
    mae = make_mae()
    ckpt = str(tmp_path / 'm.pth')
    _save(mae, ckpt)
    vit = VisionTransformer(TINY_VIT, img_size=(48, 64), patch_size=8,
                            init_cfg=dict(type='Pretrained',
                                          checkpoint=ckpt))
    vit.init_weights()
    assert vit.load_report['missing'] == []
    torch.testing.assert_close(vit.blocks[1].mlp.fc2.weight,
                               mae.backbone.blocks[1].mlp.fc2.weight)
    assert vit(torch.randn(1, 3, 48, 64))[0].shape == (1, 32, 6, 8)


def test_rectangular_tiny_export_loads_in_timm(tmp_path):
    """A 256x512-style encoder (here 64x128): timm has no such named
    model; the export names vit_tiny_patch16_224 plus model_args."""
    mae = MODELS.build(dict(
        type='MAE', backbone=dict(type='VisionTransformer', arch='tiny',
                                  img_size=(64, 128)),
        decoder=dict(embed_dim=32, depth=1, num_heads=2))).eval()
    ckpt = str(tmp_path / 'r.pth')
    _save(mae, ckpt)
    assert ExportBackboneCommand().main([ckpt, str(tmp_path / 'o')]) == 0
    config = json.loads((tmp_path / 'o' / 'config.json').read_text())
    assert config['architecture'] == 'vit_tiny_patch16_224'
    vit = timm.create_model(f"local-dir:{tmp_path / 'o'}",
                            pretrained=True).eval()
    x = torch.randn(1, 3, 64, 128)
    torch.testing.assert_close(
        vit.forward_features(x)[:, 1:],
        mae.backbone(x)[0].flatten(2).transpose(1, 2))


def test_export_backbone_takes_a_work_dir(tmp_path, make_mae):
    """`perception export-backbone WORK_DIR OUT` uses the work dir's last
    checkpoint (mmengine's last_checkpoint file), like `perception test`."""
    work = tmp_path / 'work'
    work.mkdir()
    command = ExportBackboneCommand()
    assert command.main([str(work), str(tmp_path / 'none')]) == 2
    mae = make_mae(in_chans=3, img_size=32).eval()
    _save(mae, str(work / 'iter_2.pth'))
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    out = tmp_path / 'export'
    assert command.main([str(work), str(out)]) == 0
    assert (out / 'model.safetensors').is_file()
