"""Building blocks shared by the necks: a convolution with its norm and
activation, and the weight initialisation.

Only export-friendly ops: ``Conv2d``, ``GroupNorm`` / ``BatchNorm2d`` /
timm's ``LayerNorm2d`` (``LayerNormalization`` from opset 17) and plain
activations.
"""
from __future__ import annotations

import math

from timm.layers import LayerNorm2d
from torch import Tensor, nn

NORMS = ('GN', 'BN', 'LN', None)
ACTS = {'relu': nn.ReLU, 'silu': nn.SiLU, 'gelu': nn.GELU}


def build_norm(norm: str | None, channels: int) -> nn.Module:
    """A norm layer over (B, channels, H, W) maps.

    Args:
        norm: 'GN' (GroupNorm with up to 32 groups that divide
            ``channels``; independent of the batch size, so it trains well
            at the small batches of CPU runs), 'BN' (BatchNorm2d), 'LN'
            (channel LayerNorm as in ViTDet) or None (identity).
        channels: number of channels.
    """
    if norm is None:
        return nn.Identity()
    if norm == 'GN':
        groups = math.gcd(32, channels)
        # >= 2 channels a group, so a 1x1 coarsest level still normalises
        while groups > 1 and channels // groups < 2:
            groups //= 2
        return nn.GroupNorm(groups, channels)
    if norm == 'BN':
        return nn.BatchNorm2d(channels)
    if norm == 'LN':
        return LayerNorm2d(channels)
    raise ValueError(f'unknown norm {norm!r}; choose from {list(NORMS)}')


def build_act(act: str | None) -> nn.Module:
    """An activation by name ('relu', 'silu', 'gelu') or None (identity)."""
    if act is None:
        return nn.Identity()
    if act not in ACTS:
        raise ValueError(f'unknown activation {act!r}; choose from '
                         f'{sorted(ACTS)} or None')
    return ACTS[act]()


class ConvNorm(nn.Module):
    """Convolution -> norm -> activation; the convolution has a bias only
    without a norm. Padding keeps the size at stride 1; at stride 2 a 3x3
    convolution gives ``ceil(h / 2)``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel side.
        stride: 1 or 2.
        norm: see :func:`build_norm`.
        act: see :func:`build_act`.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 3, stride: int = 1,
                 norm: str | None = 'GN', act: str | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding=kernel_size // 2, bias=norm is None)
        self.norm = build_norm(norm, out_channels)
        self.act = build_act(act)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): (B, in_channels, H, W). Returns:
        (B, out_channels, H / stride, W / stride), rounded up."""
        return self.act(self.norm(self.conv(x)))


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform convolutions and zero biases (as the FPN and ViTDet
    reference code do); norms keep weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def check_strides(strides: tuple[int, ...], what: str) -> None:
    """Strides must be increasing powers of two."""
    if not strides or any(s < 1 or s & (s - 1) for s in strides) or any(
            a >= b for a, b in zip(strides, strides[1:])):
        raise ValueError(f'{what}: strides must be increasing powers of two, '
                         f'got {tuple(strides)}')
