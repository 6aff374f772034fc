"""Masking, patchifying and the masked-patch loss shared by MAE and FCMAE."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_masking(batch: int, num_patches: int, mask_ratio: float,
                   device: torch.device | str = 'cpu',
                   generators: list[torch.Generator] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-sample random masking with an exact keep count (MAE).

    Args:
        batch: number of samples B.
        num_patches: patches per sample N.
        mask_ratio: fraction masked; ``round(N * (1 - ratio))`` are kept
            (at least one).
        generators: one ``torch.Generator`` per sample for masks that do
            not depend on the batch (held-out evaluation); else global RNG.

    Returns:
        ``ids_shuffle`` (B, N) long: kept ids first; ``mask`` (B, N) float,
        1 = masked, 0 = visible; ``len_keep``.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
    len_keep = max(1, int(round(num_patches * (1.0 - mask_ratio))))
    if generators is None:
        noise = torch.rand(batch, num_patches, device=device)
    else:
        noise = torch.stack([torch.rand(num_patches, generator=g)
                             for g in generators]).to(device)
    ids_shuffle = torch.argsort(noise, dim=1)
    mask = torch.ones(batch, num_patches, device=device)
    mask.scatter_(1, ids_shuffle[:, :len_keep], 0.0)
    return ids_shuffle, mask, len_keep


def sample_generators(seed: int, data_samples) -> list[torch.Generator]:
    """One generator per sample, seeded by ``seed`` and the sample's
    ``sample_idx`` (its position in the batch when absent), so a held-out
    image gets the same mask in every evaluation."""
    gens = []
    for i, sample in enumerate(data_samples):
        idx = i
        if sample is not None and 'sample_idx' in sample:
            idx = int(sample.sample_idx)
        gens.append(torch.Generator().manual_seed(seed * 1_000_003 + idx))
    return gens


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/p * W/p, p * p * C), row-major patches."""
    B, C, H, W = images.shape
    if H % patch or W % patch:
        raise ValueError(f'image size {H}x{W} is not a multiple of the patch '
                         f'size {patch}; resize or crop the inputs')
    x = images.reshape(B, C, H // patch, patch, W // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(
        B, (H // patch) * (W // patch), patch * patch * C)


def unpatchify(patches: torch.Tensor, patch: int, grid: tuple[int, int],
               channels: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, N, p*p*C) -> (B, C, H, W)."""
    B = patches.shape[0]
    rows, cols = grid
    x = patches.reshape(B, rows, cols, patch, patch, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(
        B, channels, rows * patch, cols * patch)


def shuffled_patches(images: torch.Tensor, patch: int,
                     ids_shuffle: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C * p * p): every patch in ``ids_shuffle``
    order (kept ones first), pixels in (C, p, p) order, the order of a
    patch-embedding convolution's weight (``weight.view(D, -1)``)."""
    B, C, H, W = images.shape
    if H % patch or W % patch:
        raise ValueError(f'image size {H}x{W} is not a multiple of the patch '
                         f'size {patch}; resize or crop the inputs')
    x = images.reshape(B, C, H // patch, patch, W // patch, patch)
    x = x.permute(0, 2, 4, 1, 3, 5).reshape(B, -1, C * patch * patch)
    return torch.gather(x, 1, ids_shuffle[..., None].expand(-1, -1,
                                                            x.shape[-1]))


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6
                      ) -> torch.Tensor:
    """Each patch (last dim, D values) to zero mean and unit variance as
    MAE's normalized-pixel loss does, ``(x - mean) / sqrt(var + eps)`` with
    the unbiased variance, in one ``layer_norm`` pass: with the biased
    variance v = var (D - 1) / D that is ``(x - mean) / sqrt(v + eps (D -
    1) / D) * sqrt((D - 1) / D)``, the factor applied as the norm's
    weight."""
    D = patches.shape[-1]
    if D < 2:   # no unbiased variance of one value: as patch_targets
        var = patches.var(dim=-1, keepdim=True)
        return (patches - patches.mean(-1, keepdim=True)) / (var + eps) ** .5
    scale = torch.full((D, ), ((D - 1) / D) ** 0.5, dtype=patches.dtype,
                       device=patches.device)
    return F.layer_norm(patches, (D, ), weight=scale, eps=eps * (D - 1) / D)


def patch_targets(images: torch.Tensor, patch: int, norm_pix: bool,
                  eps: float = 1e-6) -> torch.Tensor:
    """Patchified targets, each patch normalised to zero mean and unit
    variance when ``norm_pix`` (MAE's normalized-pixel loss)."""
    target = patchify(images.float(), patch)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps) ** 0.5
    return target


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor, reduce: bool = True
                      ) -> torch.Tensor:
    """Mean squared error over masked patches only.

    Args:
        pred, target: (B, N, D).
        mask: (B, N), 1 = masked (counted), 0 = visible (ignored).
        reduce: a scalar (mean over masked patches of the batch) or one
            value per sample.
    """
    per_patch = ((pred.float() - target) ** 2).mean(dim=-1)
    if reduce:
        return (per_patch * mask).sum() / mask.sum().clamp(min=1)
    return (per_patch * mask).sum(1) / mask.sum(1).clamp(min=1)
