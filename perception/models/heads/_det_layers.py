"""Building blocks of the dense detection heads: norm layers from configs,
conv-norm-SiLU units (full 3x3, or depthwise-separable as the light heads
of YOLO11 and RTMDet-tiny use) and the per-level box scale.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ['build_norm', 'ConvNormAct', 'DepthwiseSeparableConvNormAct',
           'Scale', 'branch_tower']


def build_norm(norm_cfg: dict | None, channels: int) -> nn.Module:
    """A norm layer from ``dict(type='GN', num_groups=G)`` (G reduced to a
    divisor of ``channels``), ``dict(type='BN')``, ``dict(type='SyncBN')``
    or None (identity)."""
    if norm_cfg is None:
        return nn.Identity()
    cfg = dict(norm_cfg)
    kind = cfg.pop('type', None)
    if kind == 'GN':
        groups = min(cfg.pop('num_groups', 32), channels)
        while channels % groups:
            groups -= 1
        return nn.GroupNorm(groups, channels, **cfg)
    if kind in ('BN', 'BN2d'):
        return nn.BatchNorm2d(channels, **cfg)
    if kind == 'SyncBN':
        return nn.SyncBatchNorm(channels, **cfg)
    raise ValueError(f"norm_cfg type must be 'GN', 'BN' or 'SyncBN', got "
                     f'{kind!r}')


class ConvNormAct(nn.Sequential):
    """kxk conv (3x3 by default), norm, SiLU; ``groups=in_channels`` makes
    it depthwise. The conv has a bias only without a norm."""

    def __init__(self, in_channels: int, out_channels: int,
                 norm_cfg: dict | None, kernel_size: int = 3,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size,
                      padding=kernel_size // 2, groups=groups,
                      bias=norm_cfg is None),
            build_norm(norm_cfg, out_channels), nn.SiLU(inplace=True))


class DepthwiseSeparableConvNormAct(nn.Sequential):
    """Depthwise 3x3 conv-norm-SiLU, then pointwise 1x1 conv-norm-SiLU
    (MobileNet, Howard et al. 2017; the stacked convs of YOLO11's
    classification branch): ``9 C + C * C'`` multiply-adds a cell instead
    of ``9 C * C'``.

    Input (B, in_channels, H, W) -> (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 norm_cfg: dict | None) -> None:
        super().__init__(
            ConvNormAct(in_channels, in_channels, norm_cfg,
                        groups=in_channels),
            ConvNormAct(in_channels, out_channels, norm_cfg, kernel_size=1))


class Scale(nn.Module):
    """A learnable scalar (one per level of the box branch)."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def branch_tower(in_channels: int, feat_channels: int, stacked_convs: int,
                 norm_cfg: dict | None, depthwise: bool = False
                 ) -> nn.Sequential:
    """``stacked_convs`` conv units, ``in_channels`` -> ``feat_channels``:
    full 3x3 :class:`ConvNormAct` or, with ``depthwise``,
    :class:`DepthwiseSeparableConvNormAct`."""
    unit = DepthwiseSeparableConvNormAct if depthwise else ConvNormAct
    return nn.Sequential(*[
        unit(in_channels if i == 0 else feat_channels, feat_channels,
             norm_cfg) for i in range(stacked_convs)])
