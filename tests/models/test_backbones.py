"""Core ViT and ConvNeXt backbones: timm names, channels, rectangular
inputs, position embeddings, multi-scale outputs, pretrained loading."""
from __future__ import annotations

import math

import pytest
import timm
import torch
from timm.layers import resample_abs_pos_embed

from perception.models.backbones import (
    ConvNeXt,
    VisionTransformer,
    load_pretrained,
    sincos_pos_embed,
)
from perception.registry import MODELS

SMALL = dict(embed_dim=32, depth=2, num_heads=2)


def test_vit_keys_are_timm_names():
    ours = VisionTransformer('tiny')
    ref = timm.create_model('vit_tiny_patch16_224', num_classes=0)
    assert set(ours.state_dict()) == set(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert ours.state_dict()[k].shape == v.shape, k


def test_convnext_keys_are_timm_names():
    assert set(ConvNeXt('atto', version=2).state_dict()) == set(
        timm.create_model('convnextv2_atto', num_classes=0).state_dict())
    assert set(ConvNeXt('atto', version=1).state_dict()) == set(
        timm.create_model('convnext_atto', num_classes=0).state_dict())


def test_built_from_registry():
    model = MODELS.build(dict(type='VisionTransformer', arch=SMALL,
                              img_size=32, patch_size=8))
    assert isinstance(model, VisionTransformer)


@pytest.mark.parametrize('chans', [1, 2, 5])
def test_vit_any_channels_rectangular(chans):
    vit = VisionTransformer(SMALL, img_size=(32, 64), patch_size=8,
                            in_chans=chans, out_indices=(0, 1))
    outs = vit(torch.randn(2, chans, 32, 64))
    assert [o.shape for o in outs] == [(2, 32, 4, 8)] * 2


def test_convnext_multiscale_any_channels_rectangular():
    net = ConvNeXt('atto', in_chans=1)
    outs = net(torch.randn(1, 1, 64, 128))
    assert [tuple(o.shape) for o in outs] == [
        (1, 40, 16, 32), (1, 80, 8, 16), (1, 160, 4, 8), (1, 320, 2, 4)]


def test_sincos_values_by_hand():
    # D=4: [sin(x), cos(x), sin(y), cos(y)] with omega = 1 (quarter = 1)
    pe = sincos_pos_embed(4, (2, 3), cls_token=True)[0]
    assert pe.shape == (7, 4)
    assert torch.equal(pe[0], torch.zeros(4))
    row, col = 1, 2                       # patch index 1 * 3 + 2 = 5
    expect = torch.tensor([math.sin(col), math.cos(col), math.sin(row),
                           math.cos(row)])
    torch.testing.assert_close(pe[1 + 5], expect)


def test_sincos_recomputed_for_new_grid():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8)
    assert not vit.pos_embed.requires_grad       # fixed, as in MAE
    torch.testing.assert_close(vit.pos_embed.data,
                               sincos_pos_embed(32, (4, 4)))
    torch.testing.assert_close(vit.grid_pos_embed((3, 6)),
                               sincos_pos_embed(32, (3, 6)))
    assert vit(torch.randn(1, 3, 24, 48))[0].shape == (1, 32, 3, 6)


def test_learned_pos_embed_resampled():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8,
                            pos_embed_type='learned')
    assert vit.pos_embed.requires_grad
    assert vit.grid_pos_embed((4, 4)) is vit.pos_embed
    expect = resample_abs_pos_embed(vit.pos_embed, new_size=[2, 8],
                                    old_size=[4, 4], num_prefix_tokens=1)
    torch.testing.assert_close(vit.grid_pos_embed((2, 8)), expect)
    assert vit(torch.randn(1, 3, 16, 64))[0].shape == (1, 32, 2, 8)


def test_same_size_matches_timm_forward():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8).eval()
    ref = timm.create_model('vit_base_patch16_224', num_classes=0,
                            img_size=32, patch_size=8, **SMALL).eval()
    ref.load_state_dict(vit.state_dict())
    x = torch.randn(2, 3, 32, 32)
    ours = vit(x)[0].flatten(2).transpose(1, 2)
    torch.testing.assert_close(ours, ref.forward_features(x)[:, 1:])


def test_pretrained_init_cfg_reports_keys(tmp_path):
    src = VisionTransformer(SMALL, img_size=32, patch_size=8)
    state = {f'backbone.{k}': v for k, v in src.state_dict().items()}
    state['decoder.pred.weight'] = torch.zeros(3)
    del state['backbone.norm.bias']
    state['backbone.extra.weight'] = torch.zeros(1)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(meta={}, state_dict=state), path)
    dst = VisionTransformer(SMALL, img_size=32, patch_size=8,
                            init_cfg=dict(type='Pretrained', checkpoint=path))
    dst.init_weights()
    report = dst.load_report
    assert report['missing'] == ['norm.bias']
    assert report['unexpected'] == ['extra.weight']
    assert report['dropped'] == ['decoder.pred.weight']
    torch.testing.assert_close(dst.blocks[0].attn.qkv.weight,
                               src.blocks[0].attn.qkv.weight)


def test_pretrained_learned_pos_embed_resampled_on_load(tmp_path):
    src = VisionTransformer(SMALL, img_size=32, patch_size=8,
                            pos_embed_type='learned')
    path = str(tmp_path / 'w.pth')
    torch.save(src.state_dict(), path)
    dst = VisionTransformer(SMALL, img_size=48, patch_size=8,
                            pos_embed_type='learned')
    report = load_pretrained(dst, path)
    assert report['missing'] == [] and report['unexpected'] == []
    expect = resample_abs_pos_embed(src.pos_embed, new_size=[6, 6],
                                    old_size=[4, 4], num_prefix_tokens=1)
    torch.testing.assert_close(dst.pos_embed.data, expect)


def test_pretrained_shape_mismatch_says_how_to_fix(tmp_path):
    path = str(tmp_path / 'w.pth')
    # 1 channel inflates to k (a CT slab); 2 -> 3 channels cannot.
    torch.save(VisionTransformer(SMALL, img_size=32, patch_size=8,
                                 in_chans=2).state_dict(), path)
    dst = VisionTransformer(SMALL, img_size=32, patch_size=8, in_chans=3)
    with pytest.raises(ValueError, match='patch_embed.proj.weight.*'
                       'pretrained_cfg'):
        load_pretrained(dst, path)


def test_bad_arguments_say_what_to_use(tmp_path):
    with pytest.raises(ValueError, match="choose from"):
        VisionTransformer('huge-ish')
    with pytest.raises(ValueError, match='pos_embed_type'):
        VisionTransformer(SMALL, pos_embed_type='rope')
    with pytest.raises(ValueError, match='choose from'):
        ConvNeXt('gigantic')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_pretrained(ConvNeXt('atto'), str(tmp_path / 'nope.pth'))


# -- fine-tuning switches: frozen_stages, freeze_norm ----------------------

def _trainable(module):
    return {n for n, p in module.named_parameters() if p.requires_grad}


def test_vit_frozen_stages_freeze_embeddings_and_first_blocks():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8,
                            pos_embed_type='learned', drop_path_rate=0.1,
                            frozen_stages=1)
    trainable = _trainable(vit)
    assert not any(n.startswith(('patch_embed.', 'blocks.0.')) or
                   n in ('cls_token', 'pos_embed') for n in trainable)
    assert {n for n in trainable if not n.startswith('blocks.1.')} == {
        'norm.weight', 'norm.bias'}
    vit.train()
    assert not vit.blocks[0].training and not vit.patch_embed.training
    assert vit.blocks[1].training
    # linear probe: everything, final norm included
    for probe in (2, 'all'):
        assert _trainable(VisionTransformer(
            SMALL, img_size=32, patch_size=8, frozen_stages=probe)) == set()
    assert len(_trainable(VisionTransformer(
        SMALL, img_size=32, patch_size=8, frozen_stages=0))) == 26


def test_convnext_frozen_stages_and_freeze_norm():
    net = ConvNeXt('atto', frozen_stages=2)
    trainable = _trainable(net)
    assert not any(n.startswith(('stem.', 'stages.0.', 'stages.1.'))
                   for n in trainable)
    assert any(n.startswith('stages.2.downsample.') for n in trainable)
    assert any(n.startswith('stages.3.') for n in trainable)
    assert _trainable(ConvNeXt('atto', frozen_stages=4)) == set()
    normed = ConvNeXt('atto', freeze_norm=True).train()
    norms = [m for m in normed.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(not m.training for m in norms)
    frozen = {n for n, p in normed.named_parameters() if not p.requires_grad}
    assert frozen == {f'{n}.{leaf}' for n, m in normed.named_modules()
                      if isinstance(m, torch.nn.LayerNorm)
                      for leaf in ('weight', 'bias')}


def test_frozen_stages_out_of_range_says_the_range():
    with pytest.raises(ValueError, match=r"1\.\.2 .*'all' is a linear probe"):
        VisionTransformer(SMALL, img_size=32, patch_size=8, frozen_stages=3)
    with pytest.raises(ValueError, match=r'1\.\.4'):
        ConvNeXt('atto', frozen_stages='some')


# -- initialisation from a work dir / export folder; nothing loaded --------

def _runner_checkpoint(work_dir, model_state, relative=False):
    """A checkpoint as mmengine's runner writes it (``meta``,
    ``state_dict``) and the work dir's ``last_checkpoint`` naming it."""
    work_dir.mkdir()
    path = work_dir / 'epoch_3.pth'
    torch.save(dict(meta=dict(epoch=3), state_dict=model_state,
                    message_hub={}), path)
    named = 'work_dirs/gone/epoch_3.pth' if relative else str(path)
    (work_dir / 'last_checkpoint').write_text(named)
    return str(work_dir)


@pytest.mark.parametrize('relative', [False, True])
def test_init_from_a_work_dir(tmp_path, relative):
    src = VisionTransformer(SMALL, img_size=32, patch_size=8)
    work_dir = _runner_checkpoint(
        tmp_path / 'run', {f'backbone.{k}': v for k, v in
                           src.state_dict().items()}, relative=relative)
    dst = VisionTransformer(SMALL, img_size=32, patch_size=8, init_cfg=dict(
        type='Pretrained', checkpoint=work_dir))
    dst.init_weights()
    assert dst.load_report == dict(missing=[], unexpected=[], dropped=[])
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_init_from_an_export_folder(tmp_path):
    from safetensors.torch import save_file
    src = ConvNeXt('atto')
    folder = tmp_path / 'export'
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in src.state_dict().items()},
              str(folder / 'model.safetensors'))
    (folder / 'config.json').write_text('{"perception": {"arch": "x"}}')
    dst = ConvNeXt('atto')
    assert load_pretrained(dst, str(folder))['missing'] == []
    torch.testing.assert_close(dst.stem[0].weight, src.stem[0].weight)
    from perception.models.backbones import read_state_dict
    assert read_state_dict(str(folder))[1] == {'pretrained_cfg': {'arch': 'x'}}


def test_no_weight_loaded_is_an_error_naming_file_prefix_and_fix(tmp_path):
    from perception.fileio import CheckpointError
    src = VisionTransformer(SMALL, img_size=32, patch_size=8)
    path = str(tmp_path / 'detector.pth')
    torch.save(dict(state_dict={f'model.backbone.{k}': v for k, v in
                                src.state_dict().items()}), path)
    dst = VisionTransformer(SMALL, img_size=32, patch_size=8)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(dst, path)
    message = str(info.value)
    assert 'no weight loaded from' in message and 'detector.pth' in message
    assert "'backbone.'" in message and 'model. (' in message
    assert "prefix='model.backbone.'" in message
    with pytest.raises(CheckpointError, match=r"prefix 'encoder\.'"):
        load_pretrained(dst, path, prefix='encoder.')
    # a ConvNeXt file into a ViT: nothing fits, check the architecture
    other = str(tmp_path / 'convnext.pth')
    torch.save(ConvNeXt('atto').state_dict(), other)
    with pytest.raises(CheckpointError, match='weights of this architecture'):
        load_pretrained(dst, other)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='neither model.safetensors'):
        load_pretrained(dst, str(tmp_path / 'empty'))
