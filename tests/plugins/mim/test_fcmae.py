"""FCMAE on the core ConvNeXt: hidden regions never leak into visible
positions through the convolutions or global response norm."""
from __future__ import annotations

import torch

from perception.registry import MODELS
from perception_mim.masking import unpatchify


def _fcmae(in_chans=3, version=2):
    model = MODELS.build(dict(
        type='FCMAE', backbone=dict(type='ConvNeXt', arch='atto',
                                    version=version, in_chans=in_chans),
        decoder=dict(embed_dim=32, depth=1))).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # GRN starts as identity (zeros): make it act
        for name, param in model.backbone.named_parameters():
            if 'grn' in name:
                param.normal_(0, 0.5)
    return model


def _gens(n):
    return [torch.Generator().manual_seed(10 + i) for i in range(n)]


def _pixel_mask(mask, rows, cols):
    return unpatchify(mask[..., None].expand(-1, -1, 32 * 32), 32,
                      (rows, cols), 1)


def test_hidden_pixels_do_not_reach_visible_features():
    model = _fcmae()
    x = torch.randn(2, 3, 128, 192)
    feats, mask = model.encode(x, _gens(2))
    assert feats.shape == (2, 320, 4, 6)
    assert mask.sum(1).tolist() == [round(24 * 0.6)] * 2
    hidden = _pixel_mask(mask, 4, 6)
    # any change under the hidden patches: identical features everywhere
    y = x + 50 * hidden * torch.randn_like(x)
    torch.testing.assert_close(model.encode(y, _gens(2))[0], feats)
    # hidden positions stay empty, as in a sparse tensor
    assert torch.all(feats * mask.reshape(2, 1, 4, 6) == 0)
    # a change in visible pixels does change them
    z = x + 50 * (1 - hidden) * torch.randn_like(x)
    assert not torch.allclose(model.encode(z, _gens(2))[0], feats)


def test_dense_masking_needs_the_hooks():
    """Without masking inside the blocks (plain dense forward on a zeroed
    image) hidden positions would be filled from visible neighbours: the
    encoder would see different inputs than FCMAE's sparse semantics."""
    model = _fcmae()
    x = torch.randn(1, 3, 128, 128)
    feats, mask = model.encode(x, _gens(1))
    hidden = _pixel_mask(mask, 4, 4)
    dense = model.backbone(x * (1 - hidden))[-1]
    assert not torch.allclose(dense, feats)
    assert dense.abs().sum() > 0


def test_v1_convnext_and_one_channel():
    model = _fcmae(in_chans=1, version=1)
    x = torch.randn(2, 1, 64, 128)
    feats, mask = model.encode(x, _gens(2))
    hidden = _pixel_mask(mask, 2, 4)
    y = x + 50 * hidden * torch.randn_like(x)
    torch.testing.assert_close(model.encode(y, _gens(2))[0], feats)
    loss = model(x, mode='loss')
    assert set(loss) == {'loss'} and torch.isfinite(loss['loss'])


def test_hooks_inactive_outside_encode():
    model = _fcmae()
    x = torch.randn(1, 3, 64, 64)
    a = model.backbone(x)[-1]
    model.encode(x, _gens(1))
    torch.testing.assert_close(model.backbone(x)[-1], a)


def test_loss_shapes_and_predict():
    model = _fcmae()
    x = torch.randn(2, 3, 64, 96)
    pred, mask = model(x, mode='tensor')
    assert pred.shape == (2, 6, 32 * 32 * 3) and mask.shape == (2, 6)
    out = model(x, mode='predict')
    assert all(hasattr(s, 'masked_patch_loss') for s in out)


def test_equals_sparse_semantics_on_a_half_hidden_image():
    """Right half hidden: the visible features must equal the backbone run
    on the left half alone (a sparse encoder sees exactly that: zeros
    beyond the border, global response norm over visible sites only)."""
    model = _fcmae()
    x = torch.randn(1, 3, 64, 128)
    mask = torch.tensor([[0, 0, 1, 1, 0, 0, 1, 1]], dtype=torch.float32)
    feats, _ = model.encode(x, mask=mask)
    alone = model.backbone(x[..., :64])[-1]
    torch.testing.assert_close(feats[..., :2], alone, atol=1e-5, rtol=1e-4)
    assert torch.all(feats[..., 2:] == 0)
