"""MAE's loss path (patch embedding on the visible patches only, the
prediction head on the masked ones, one-pass normalized targets, q/k/v
split on the qkv layout) against the path it replaced, written out here as
it was: the same loss and gradients."""
from __future__ import annotations

import pytest
import torch
from timm.layers.attention import Attention as TimmAttention

from perception.models.backbones import Attention
from perception_mim.masking import (
    masked_patch_loss,
    normalize_patches,
    patch_targets,
    patchify,
    random_masking,
)


def _old_loss(mae, images, generators):
    """The step before the fast path: convolution on all patches, gather,
    full decoder, targets and mask-weighted loss on every patch."""
    bb = mae.backbone
    x = bb.patch_embed(images)
    B, rows, cols, D = x.shape
    pos = bb.grid_pos_embed((rows, cols))
    x = x.reshape(B, rows * cols, D) + pos[:, 1:]
    ids_shuffle, mask, keep = random_masking(B, rows * cols, mae.mask_ratio,
                                             x.device, generators)
    x = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, D))
    cls = (bb.cls_token + pos[:, :1]).expand(B, -1, -1)
    x = bb.norm(bb.blocks(bb.norm_pre(torch.cat([cls, x], dim=1))))
    pred = mae.decoder(x, ids_shuffle, (rows, cols))
    target = patch_targets(images, mae.patch_size, mae.norm_pix_loss)
    return masked_patch_loss(pred, target, mask)


def _gens(n, seed=0):
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}


@pytest.mark.parametrize('kwargs,shape', [
    (dict(), (3, 3, 32, 32)),
    (dict(norm_pix_loss=False), (2, 3, 32, 32)),
    (dict(in_chans=1, img_size=(32, 48)), (2, 1, 32, 48)),
])
def test_loss_and_gradients_equal_the_old_path(make_mae, kwargs, shape):
    torch.manual_seed(0)
    mae = make_mae(**kwargs).train()
    images = torch.randn(*shape) * 2 + 0.5
    old = _old_loss(mae, images, _gens(shape[0]))
    old.backward()
    old_grads = _grads(mae)
    mae.zero_grad(set_to_none=True)
    new = mae.loss(images, _gens(shape[0]))
    new.backward()
    new_grads = _grads(mae)
    assert abs(new.item() - old.item()) <= 1e-5 * max(1.0, abs(old.item()))
    assert set(new_grads) == set(old_grads)
    for name, g in old_grads.items():
        torch.testing.assert_close(new_grads[name], g, rtol=1e-4, atol=1e-6,
                                   msg=name)


def test_per_sample_loss_equals_the_old_path(make_mae):
    torch.manual_seed(1)
    mae = make_mae().eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        new = mae.loss(images, _gens(4), reduce=False)
        pred, mask = mae.predict_patches(images, _gens(4))
        old = masked_patch_loss(pred, patch_targets(images, 8, True), mask,
                                reduce=False)
    assert new.shape == (4, )
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-6)


def test_one_pass_normalization_matches_mean_and_unbiased_var():
    x = torch.randn(5, 7, 48) * 3 + 1
    x[0, 0] = 2.0          # a flat patch: eps keeps it finite, as before
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True)
    expect = (x - mean) / (var + 1e-6) ** 0.5
    torch.testing.assert_close(normalize_patches(x), expect, rtol=1e-5,
                               atol=1e-5)
    assert torch.equal(normalize_patches(x)[0, 0], torch.zeros(48))


def test_masked_only_predictions_are_the_full_ones_reordered(make_mae):
    mae = make_mae().eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens, ids, mask, grid = mae.encode(images, _gens(2))
        full = mae.decoder(tokens, ids, grid)              # (B, N, p*p*C)
        part = mae.decoder(tokens, ids, grid, masked_only=True)
    keep = tokens.shape[1] - 1
    for b in range(2):
        for j, patch in enumerate(ids[b, keep:].tolist()):
            # (p, p, C) -> (C, p, p)
            want = full[b, patch].view(8, 8, 3).permute(2, 0, 1).flatten()
            torch.testing.assert_close(part[b, j], want)
    # and the masked ids are the masked ones
    assert torch.all(mask.gather(1, ids[:, keep:]) == 1)
    assert patchify(images, 8).shape[1] == ids.shape[1]


@pytest.mark.parametrize('amp', [False, True])
def test_attention_layout_equals_timm(amp):
    torch.manual_seed(0)
    ours, timm_attn = Attention(32, 2, qkv_bias=True), TimmAttention(
        32, 2, qkv_bias=True)
    timm_attn.load_state_dict(ours.state_dict())
    x = torch.randn(3, 9, 32)
    outs = []
    for module in (ours, timm_attn):
        xi = x.clone().requires_grad_()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
            y = module(xi)
        y.float().square().sum().backward()
        outs.append((y.float(), xi.grad, module.qkv.weight.grad))
    tol = dict(rtol=2e-2, atol=2e-2) if amp else dict(rtol=0, atol=0)
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, **tol)
