"""Feature pyramids for hierarchical backbones: FPN (Lin et al. 2017,
"Feature Pyramid Networks for Object Detection") and PAFPN, FPN with the
bottom-up path augmentation of PANet (Liu et al. 2018, "Path Aggregation
Network for Instance Segmentation").

They take the tuple of stage maps of the core ``ConvNeXt`` (strides 4, 8,
16, 32) or of any timm model through ``TimmBackbone``.
"""
from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from perception.models.necks._layers import ConvNorm, check_strides, init_weights
from perception.registry import MODELS


def _choose_inputs(n_inputs: int, in_indices: Sequence[int] | None,
                   start_level: int | None, what: str) -> tuple[int, ...]:
    if in_indices is not None and start_level is not None:
        raise ValueError(f'{what}: give in_indices or start_level, not both')
    if start_level is not None:
        in_indices = range(start_level, n_inputs)
    elif in_indices is None:
        in_indices = range(max(n_inputs - 3, 0), n_inputs)
    chosen = tuple(sorted({i % n_inputs for i in in_indices
                           if -n_inputs <= i < n_inputs}))
    if len(chosen) != len(tuple(in_indices)) or not chosen:
        raise ValueError(f'{what}: in_indices {tuple(in_indices)} must be '
                         f'distinct indices of the {n_inputs} inputs')
    return chosen


@MODELS.register_module()
class FPN(nn.Module):
    """Feature Pyramid Network (Lin et al. 2017).

    Each chosen input gets a 1x1 lateral convolution; coarser levels are
    upsampled (nearest, to the finer map's size) and added top-down; a 3x3
    convolution smooths each sum. Levels beyond the inputs (``num_outs``)
    come from stride-2 3x3 convolutions on the last output (ReLU before all
    but the first, as RetinaNet's P7).

    Output sizes: each input level keeps its map's size; an extra level
    has ``ceil(h / 2)`` of the level before. Inputs of any size work as long
    as each map is half the finer one, rounded either way (as backbones
    make them); with an image side a multiple of the largest stride every
    level is exactly H / s.

    Args:
        in_channels: channels of every backbone output (all of them, also
            those not used).
        out_channels: channels of every output level.
        in_indices: which inputs to use; default the last three (strides
            8/16/32 for the core ConvNeXt).
        start_level: mmdetection's way to say ``in_indices``: the inputs
            from this one on. Give one of the two.
        num_outs: number of outputs, at least the number of inputs used
            (default equal).
        in_strides: stride of every backbone output (a backbone's
            ``strides``); default halving towards a last stride of 32
            (4/8/16/32 for four inputs).
        norm: 'GN' (default; batch-size independent), 'BN', 'LN' or None.
        act: activation after every convolution (None: none, as in FPN).

    Attributes:
        strides (tuple[int, ...]): stride of each output level.
        out_channels (int): channels of every output level.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256,
                 in_indices: Sequence[int] | None = None,
                 start_level: int | None = None, num_outs: int | None = None,
                 in_strides: Sequence[int] | None = None,
                 norm: str | None = 'GN', act: str | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = [int(c) for c in in_channels]
        n_inputs = len(in_channels)
        if in_strides is None:
            in_strides = [32 // 2 ** (n_inputs - 1 - i) for i in range(n_inputs)]
        in_strides = tuple(int(s) for s in in_strides)
        if len(in_strides) != n_inputs:
            raise ValueError(f'{name}: {n_inputs} in_channels but '
                             f'{len(in_strides)} in_strides')
        self.in_indices = _choose_inputs(n_inputs, in_indices, start_level,
                                         name)
        used = len(self.in_indices)
        num_outs = used if num_outs is None else int(num_outs)
        if num_outs < used:
            raise ValueError(f'{name}: num_outs={num_outs} is fewer than the '
                             f'{used} inputs used; drop inputs with '
                             'in_indices instead')
        strides = [in_strides[i] for i in self.in_indices]
        strides += [strides[-1] * 2 ** k for k in range(1, num_outs - used + 1)]
        self.strides = tuple(strides)
        check_strides(self.strides, name)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lateral_convs = nn.ModuleList(
            ConvNorm(in_channels[i], out_channels, 1, norm=norm, act=act)
            for i in self.in_indices)
        self.fpn_convs = nn.ModuleList(
            ConvNorm(out_channels, out_channels, 3, norm=norm, act=act)
            for _ in self.in_indices)
        self._build_bottom_up(used, norm, act)
        self.extra_convs = nn.ModuleList(
            ConvNorm(out_channels, out_channels, 3, stride=2, norm=norm,
                     act=act) for _ in range(num_outs - used))
        init_weights(self)

    def _build_bottom_up(self, levels: int, norm: str | None,
                         act: str | None) -> None:
        """FPN has no bottom-up path (PAFPN adds one)."""

    def _bottom_up(self, outs: list[Tensor]) -> list[Tensor]:
        return outs

    def forward(self, feats: Sequence[Tensor]) -> tuple[Tensor, ...]:
        """Args:
            feats: every backbone output, (B, in_channels[i], h_i, w_i)
                at ``in_strides[i]``, finest first.

        Returns:
            ``num_outs`` maps (B, out_channels, h, w), one per ``strides``,
            finest first.
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f'{type(self).__name__}: built for '
                             f'{len(self.in_channels)} inputs, got '
                             f'{len(feats)}')
        laterals = [conv(feats[i]) for conv, i in zip(self.lateral_convs,
                                                      self.in_indices)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode='nearest')
        outs = self._bottom_up([conv(x) for conv, x in zip(self.fpn_convs,
                                                           laterals)])
        for k, conv in enumerate(self.extra_convs):
            outs.append(conv(F.relu(outs[-1]) if k else outs[-1]))
        return tuple(outs)


@MODELS.register_module()
class PAFPN(FPN):
    """FPN with PANet's bottom-up path augmentation (Liu et al. 2018).

    After FPN's top-down path gives P_i, the bottom-up path builds
    N_1 = P_1 and N_{i+1} = conv3x3(P_{i+1} + conv3x3_stride2(N_i)), which
    shortens the way from fine, well-localised features to the coarse
    levels. A stride-2 map of an odd side is one row/column larger than a
    backbone that rounds down; it is cropped (bottom/right) to P_{i+1}.
    Extra levels (``num_outs``) follow N_last as in :class:`FPN`.

    Args: as :class:`FPN`; ``act`` defaults to 'relu' (PANet puts a ReLU
    after every convolution).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256,
                 in_indices: Sequence[int] | None = None,
                 start_level: int | None = None, num_outs: int | None = None,
                 in_strides: Sequence[int] | None = None,
                 norm: str | None = 'GN', act: str | None = 'relu') -> None:
        super().__init__(in_channels, out_channels, in_indices=in_indices,
                         start_level=start_level, num_outs=num_outs,
                         in_strides=in_strides, norm=norm, act=act)

    def _build_bottom_up(self, levels: int, norm: str | None,
                         act: str | None) -> None:
        channels = self.out_channels
        self.downsample_convs = nn.ModuleList(
            ConvNorm(channels, channels, 3, stride=2, norm=norm, act=act)
            for _ in range(levels - 1))
        self.pafpn_convs = nn.ModuleList(
            ConvNorm(channels, channels, 3, norm=norm, act=act)
            for _ in range(levels - 1))

    def _bottom_up(self, outs: list[Tensor]) -> list[Tensor]:
        new = [outs[0]]
        for down, conv, target in zip(self.downsample_convs, self.pafpn_convs,
                                      outs[1:]):
            height, width = target.shape[-2:]
            new.append(conv(target + down(new[-1])[..., :height, :width]))
        return new
