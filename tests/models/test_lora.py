"""LoRA on the core ViT's attention and ConvNeXt's pointwise layers: only
the low-rank matrices train, merging gives the same outputs with plain
layers, base weights keep their names (pretrained weights load)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from perception.models.backbones import ConvNeXt, VisionTransformer
from perception.models.lora import (
    LoRAConv1x1,
    LoRALinear,
    apply_lora,
    lora_parameter_names,
    merge_lora,
)
from perception.registry import MODELS

SMALL = dict(embed_dim=32, depth=2, num_heads=2)
# one block per stage keeps ConvNeXt tests fast
CONVNEXT_SMALL = dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32))


def _lora_modules(model):
    return [m for m in model.modules()
            if isinstance(m, (LoRALinear, LoRAConv1x1))]


def _train_lora(model, x, steps=2):
    """A few steps so B is no longer zero (merging must carry the update)."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        sum(o.square().mean() for o in model(x)).backward()
        opt.step()


@pytest.mark.parametrize('build,x', [
    (lambda: VisionTransformer(SMALL, img_size=32, patch_size=8,
                               out_indices=(0, 1)),
     torch.randn(2, 3, 32, 32)),
    (lambda: ConvNeXt(dict(CONVNEXT_SMALL, conv_mlp=True)),
     torch.randn(2, 3, 64, 64)),
    # layer scale 1 (not timm's 1e-6) so the trained update shows
    (lambda: ConvNeXt(dict(CONVNEXT_SMALL, conv_mlp=False), version=1,
                      ls_init_value=1.0),
     torch.randn(2, 3, 64, 64)),
], ids=['vit', 'convnext-conv-mlp', 'convnext-linear-mlp'])
def test_merged_equals_unmerged_and_leaves_no_lora(build, x):
    torch.manual_seed(0)
    model = build()
    plain_keys = set(model.state_dict())
    targets = ('qkv', 'proj') if isinstance(model, VisionTransformer) else (
        'mlp.fc1', 'mlp.fc2')
    apply_lora(model, rank=4, alpha=8, targets=targets)
    assert _lora_modules(model)
    before = [o.detach() for o in model.eval()(x)]
    _train_lora(model.train(), x)
    model.eval()
    expect = [o.detach() for o in model(x)]
    assert any(not torch.allclose(a, b) for a, b in zip(before, expect))
    merge_lora(model)
    assert _lora_modules(model) == []
    assert not any('lora' in n for n in model.state_dict())
    assert set(model.state_dict()) == plain_keys
    for got, want in zip(model(x), expect):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_only_lora_trains_and_base_weights_stay():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8)
    x = torch.randn(2, 3, 32, 32)
    ref = vit.eval()(x)[0].detach()
    apply_lora(vit, rank=2)              # B = 0: the model is unchanged
    torch.testing.assert_close(vit(x)[0], ref)
    trainable = {n for n, p in vit.named_parameters() if p.requires_grad}
    assert trainable == set(lora_parameter_names(vit))
    assert trainable == {f'blocks.{i}.attn.{layer}.lora_{m}'
                         for i in range(2) for layer in ('qkv', 'proj')
                         for m in 'AB'}
    # the patch embedding's proj (a strided conv) is not adapted
    assert type(vit.patch_embed.proj) is nn.Conv2d
    base = {n: p.detach().clone() for n, p in vit.named_parameters()
            if not p.requires_grad}
    _train_lora(vit.train(), x)
    for name, param in vit.named_parameters():
        if name in base:
            assert torch.equal(param, base[name]), name
    assert vit.blocks[0].attn.qkv.lora_B.abs().sum() > 0


def test_lora_from_the_backbone_config_and_pretrained_weights_load(tmp_path):
    src = VisionTransformer(SMALL, img_size=32, patch_size=8)
    path = str(tmp_path / 'w.pth')
    torch.save(dict(meta={}, state_dict={f'backbone.{k}': v for k, v in
                                         src.state_dict().items()}), path)
    vit = MODELS.build(dict(
        type='VisionTransformer', arch=SMALL, img_size=32, patch_size=8,
        lora=dict(rank=2, alpha=4),
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    vit.init_weights()
    assert vit.load_report['missing'] == []      # LoRA matrices start fresh
    assert vit.load_report['unexpected'] == []
    torch.testing.assert_close(vit.blocks[1].attn.qkv.weight,
                               src.blocks[1].attn.qkv.weight)
    assert vit.blocks[1].attn.qkv.scaling == 2.0
    net = MODELS.build(dict(type='ConvNeXt', arch=CONVNEXT_SMALL,
                            lora=dict(rank=2)))
    assert {n.rsplit('.', 2)[-2] for n in lora_parameter_names(net)} == {
        'fc1', 'fc2'}


def test_lora_errors_say_what_to_use():
    with pytest.raises(ValueError, match=r"matches targets.*'mlp.fc1'"):
        apply_lora(VisionTransformer(SMALL, img_size=32, patch_size=8),
                   targets=('fc3', ))
    with pytest.raises(ValueError, match=r"unknown keys \['ranks'\]"):
        VisionTransformer(SMALL, img_size=32, patch_size=8,
                          lora=dict(ranks=4))
    with pytest.raises(ValueError, match='rank must be >= 1'):
        apply_lora(nn.Sequential(nn.Linear(4, 4)), rank=0, targets=('0', ))
