"""Simple feature pyramid of ViTDet (Li et al. 2022, "Exploring Plain Vision
Transformer Backbones for Object Detection"): the multi-scale maps a
detection head needs, built from the single map of a plain ViT.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from perception.models.necks._layers import (
    ConvNorm,
    build_norm,
    check_strides,
    init_weights,
)
from perception.registry import MODELS


def _scale_stage(in_channels: int, in_stride: int, stride: int,
                 norm: str | None) -> tuple[nn.Module, int]:
    """Resample a stride-``in_stride`` map to ``stride``: 2x2 deconvolutions
    (halving channels, norm + GELU between them, as ViTDet does at 4x), the
    identity, or 2x2 max-pools. Returns the module and its output channels.
    """
    layers: list[nn.Module] = []
    channels, current = in_channels, in_stride
    while current > stride:
        if layers:
            layers += [build_norm(norm, channels), nn.GELU()]
        out = max(channels // 2, min(channels, 8))
        layers.append(nn.ConvTranspose2d(channels, out, 2, stride=2))
        channels, current = out, current // 2
    while current < stride:
        # ceil_mode: an odd side n gives ceil(n / 2), as a stride-2 conv does
        layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
        current *= 2
    return (nn.Sequential(*layers) if layers else nn.Identity()), channels


@MODELS.register_module()
class SimpleFPN(nn.Module):
    """ViTDet's simple feature pyramid over a plain ViT.

    The last map of the backbone's tuple (the core ``VisionTransformer``
    returns (B, D, H/p, W/p) maps) is resampled to each stride: by 2x2
    transposed convolutions to finer strides, kept at ``in_stride``, or
    2x2 max-pooled to coarser strides; each level then goes through a 1x1
    and a 3x3 convolution, each with a norm, to ``out_channels``.

    Output sizes: for an input map (h, w), a level ``k`` times finer has
    (k * h, k * w); a level ``k`` times coarser has ``ceil(h / k)``
    (max-pools round up). With an image side a multiple of
    ``max(strides)`` (the detector's preprocessor pads to one) that is
    exactly H / s at every level.

    Args:
        in_channels: channels of the backbone map (the ViT's embed_dim).
        out_channels: channels of every output level.
        strides: output strides, increasing powers of two.
        in_stride: stride of the backbone map (the ViT's patch size).
        norm: 'GN' (default; batch-size independent), 'LN' (ViTDet's
            choice), 'BN' or None; see ``build_norm``.

    Attributes:
        strides (tuple[int, ...]): stride of each output level.
        out_channels (int): channels of every output level.
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 strides: Sequence[int] = (8, 16, 32), in_stride: int = 16,
                 norm: str | None = 'GN') -> None:
        super().__init__()
        strides = tuple(int(s) for s in strides)
        check_strides(strides, 'SimpleFPN')
        check_strides((in_stride, ), 'SimpleFPN in_stride')
        self.in_channels = in_channels
        self.in_stride = in_stride
        self.strides = strides
        self.out_channels = out_channels
        self.scales = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for stride in strides:
            scale, channels = _scale_stage(in_channels, in_stride, stride,
                                           norm)
            self.scales.append(scale)
            self.lateral_convs.append(ConvNorm(channels, out_channels, 1,
                                               norm=norm))
            self.output_convs.append(ConvNorm(out_channels, out_channels, 3,
                                              norm=norm))
        init_weights(self)

    def forward(self, feats: Sequence[Tensor] | Tensor) -> tuple[Tensor, ...]:
        """Args:
            feats: the backbone's maps; the last, (B, in_channels, h, w) at
                ``in_stride``, is used (a single tensor is accepted too).

        Returns:
            One (B, out_channels, h * in_stride / s, w * in_stride / s) map
            per stride ``s`` of ``strides`` (rounded up), finest first.
        """
        x = feats if isinstance(feats, Tensor) else feats[-1]
        return tuple(out(lat(scale(x))) for scale, lat, out in zip(
            self.scales, self.lateral_convs, self.output_convs))
