"""MAE: exact masking, encoder sees visible patches only, loss on masked
patches only, determinism, 1-channel/rectangular inputs, overfitting."""
from __future__ import annotations

import torch

from perception_mim.masking import (
    masked_patch_loss,
    patch_targets,
    patchify,
    random_masking,
    unpatchify,
)


def test_random_masking_exact_ratio():
    for n, ratio in [(196, 0.75), (49, 0.75), (10, 0.6), (7, 0.5)]:
        ids, mask, keep = random_masking(5, n, ratio)
        assert keep == max(1, round(n * (1 - ratio)))
        assert torch.all(mask.sum(1) == n - keep)      # per sample, exact
        # the kept ids are exactly the visible ones
        for b in range(5):
            visible = torch.nonzero(mask[b] == 0).flatten()
            assert set(ids[b, :keep].tolist()) == set(visible.tolist())


def test_masks_differ_per_sample_and_fixed_with_generators():
    _, mask, _ = random_masking(4, 64, 0.75)
    assert not torch.equal(mask[0], mask[1])
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(4)]  # noqa
    assert torch.equal(random_masking(4, 64, 0.75, generators=gens())[1],
                       random_masking(4, 64, 0.75, generators=gens())[1])


def test_patchify_round_trip_and_layout():
    x = torch.arange(2 * 3 * 16 * 24, dtype=torch.float32).reshape(
        2, 3, 16, 24)
    p = patchify(x, 8)
    assert p.shape == (2, 6, 8 * 8 * 3)
    # patch 4 = row 1, col 1: pixels [8:16, 8:16]
    torch.testing.assert_close(
        p[0, 4].reshape(8, 8, 3), x[0, :, 8:16, 8:16].permute(1, 2, 0))
    torch.testing.assert_close(unpatchify(p, 8, (2, 3), 3), x)


def test_encoder_gets_only_visible_patches(make_mae):
    mae = make_mae().eval()
    x = torch.randn(2, 3, 32, 32)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(2)]  # noqa
    tokens, ids, mask, grid = mae.encode(x, gens())
    assert grid == (4, 4)
    assert tokens.shape == (2, 1 + 4, 32)               # 16 * 0.25 + cls
    # changing every masked patch leaves the encoder output unchanged...
    pix_mask = unpatchify(mask[..., None].expand(-1, -1, 64), 8, grid, 1)
    y = x + 100.0 * pix_mask * torch.randn_like(x)
    torch.testing.assert_close(mae.encode(y, gens())[0], tokens)
    # ...changing a visible one does not
    z = x + 100.0 * (1 - pix_mask) * torch.randn_like(x)
    assert not torch.allclose(mae.encode(z, gens())[0], tokens)


def test_loss_counts_masked_patches_only():
    target = torch.randn(2, 6, 12)
    mask = torch.tensor([[1, 1, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]]).float()
    pred = target.clone()
    pred[mask == 0] += 5.0                 # wrong only where visible
    assert masked_patch_loss(pred, target, mask).item() == 0.0
    pred = target.clone()
    pred[0, 0] += 1.0                      # one masked patch off by 1
    expect = 1.0 / 4                       # mean over the 4 masked patches
    assert abs(masked_patch_loss(pred, target, mask).item() - expect) < 1e-6


def test_model_loss_ignores_visible_predictions(make_mae, monkeypatch):
    mae = make_mae()
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(0)
    pred, mask = mae.predict_patches(x)
    target = patch_targets(x, 8, True)
    pred2 = pred.clone()
    pred2[mask == 0] = 123.0
    torch.testing.assert_close(masked_patch_loss(pred, target, mask),
                               masked_patch_loss(pred2, target, mask))


def test_normalized_targets_mean_baseline_is_one():
    x = torch.randn(3, 1, 32, 32) * 5 + 2
    target = patch_targets(x, 8, norm_pix=True)
    pred = torch.zeros_like(target)            # = each patch's mean
    loss = masked_patch_loss(pred, target, torch.ones(3, 16))
    assert abs(loss.item() - 63 / 64) < 1e-3   # unbiased var over 64 px


def test_same_seed_same_loss(make_mae):
    x = torch.randn(2, 3, 32, 32)
    losses = []
    for _ in range(2):
        torch.manual_seed(7)
        mae = make_mae()
        losses.append(mae(x, mode='loss')['loss'].item())
    assert losses[0] == losses[1]
    assert set(mae(x, mode='loss')) == {'loss'}
    assert mae(x, mode='loss')['loss'].ndim == 0


def test_one_channel_and_rectangular(make_mae):
    mae = make_mae(in_chans=1, img_size=(32, 64))
    x = torch.randn(2, 1, 32, 64)
    pred, mask = mae(x, mode='tensor')
    assert pred.shape == (2, 32, 8 * 8 * 1) and mask.shape == (2, 32)
    assert mask.sum(1).tolist() == [24, 24]
    assert torch.isfinite(mae(x, mode='loss')['loss'])
    # another size at run time: sin-cos positions recomputed
    assert torch.isfinite(mae(torch.randn(1, 1, 48, 24), mode='loss')['loss'])


def test_predict_mode_fixed_masks_and_baseline(make_mae):
    from perception.structures import DataSample
    mae = make_mae().eval()
    x = torch.randn(3, 3, 32, 32)
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in range(3)]
    a = [s.masked_patch_loss for s in mae(x, samples, mode='predict')]
    samples = [DataSample(metainfo=dict(sample_idx=i)) for i in range(3)]
    out = mae(x, samples, mode='predict')
    assert [s.masked_patch_loss for s in out] == a
    assert all(0.9 < s.mean_patch_loss <= 1.0 for s in out)


def test_bad_inputs_say_what_to_change(make_mae):
    import pytest
    mae = make_mae()
    with pytest.raises(ValueError, match='in_chans'):
        mae(torch.randn(1, 1, 32, 32), mode='loss')
    with pytest.raises(ValueError, match='multiple of the patch size'):
        mae(torch.randn(1, 3, 30, 32), mode='loss')


def test_tiny_model_overfits_one_batch(make_mae):
    torch.manual_seed(0)
    mae = make_mae(norm_pix_loss=True)
    x = torch.randn(4, 3, 32, 32).cumsum(-1).cumsum(-2) / 10  # smooth
    opt = torch.optim.AdamW([p for p in mae.parameters()
                             if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(200):
        loss = mae(x, mode='loss')['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first = sum(losses[:10]) / 10
    last = sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)
