"""ConvNeXt backbone (Liu et al. 2022; V2: Woo et al. 2023) on timm's
``ConvNeXt``: timm's parameter names, any channel count, any input size,
features of the four stages (strides 4, 8, 16, 32) for detection heads.
"""
from __future__ import annotations

from typing import Sequence

import torch
from timm.models.convnext import ConvNeXt as _TimmConvNeXt

from perception.models.backbones._finetune import FineTuneMixin
from perception.models.backbones._grn import use_few_pass_grn
from perception.models.backbones._pretrained import PretrainedMixin
from perception.models.lora import CONVNEXT_TARGETS
from perception.registry import MODELS

CONVNEXT_ARCHS = {
    'atto': dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)),
    'femto': dict(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384)),
    'pico': dict(depths=(2, 2, 6, 2), dims=(64, 128, 256, 512)),
    'nano': dict(depths=(2, 2, 8, 2), dims=(80, 160, 320, 640)),
    'tiny': dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)),
}
# timm's small variants use the conv MLP; these names match timm's models
_CONV_MLP = ('atto', 'femto', 'pico', 'nano')


@MODELS.register_module()
class ConvNeXt(PretrainedMixin, FineTuneMixin, _TimmConvNeXt):
    """ConvNeXt backbone with timm's parameter names.

    Args:
        arch: 'atto' | 'femto' | 'pico' | 'nano' | 'tiny', or a dict with
            ``depths`` and ``dims``.
        version: 1 (ConvNeXt) or 2 (ConvNeXt V2: global response norm, no
            layer scale; the FCMAE-pretrained kind).
        in_chans: input channels.
        out_indices: stages whose output :meth:`forward` returns
            ((B, dims[i], H / 2**(i+2), W / 2**(i+2)) maps).
        drop_path_rate: stochastic depth.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH, prefix=None)``;
            PATH is a file, a training work dir or an ``export-backbone``
            folder.
        frozen_stages: -1 trains everything; N freezes the stem and the
            first N stages; 4 (the number of stages) or ``'all'`` the whole
            backbone (linear probe). See
            :mod:`~perception.models.backbones._finetune`.
        freeze_norm: freeze every norm layer.
        lora: ``dict(rank=8, alpha=16, targets=('mlp.fc1', 'mlp.fc2'),
            dropout=0.0)``: LoRA on the blocks' pointwise layers (Linear, or
            1x1 convs with ``conv_mlp``), the rest frozen (Hu et al. 2021).
        **timm_kwargs: other timm ``ConvNeXt`` arguments.
    """

    lora_targets = CONVNEXT_TARGETS

    def __init__(self, arch: str | dict = 'atto', version: int = 2,
                 in_chans: int = 3, out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.0, init_cfg: dict | None = None,
                 frozen_stages: int | str = -1, freeze_norm: bool = False,
                 lora: dict | None = None, **timm_kwargs) -> None:
        if isinstance(arch, str):
            if arch not in CONVNEXT_ARCHS:
                raise ValueError(f'ConvNeXt: unknown arch {arch!r}; choose '
                                 f'from {sorted(CONVNEXT_ARCHS)} or give a '
                                 'dict(depths=, dims=)')
            arch_name, params = arch, dict(CONVNEXT_ARCHS[arch])
            params['conv_mlp'] = arch in _CONV_MLP
        else:
            arch_name, params = 'custom', dict(arch)
        if version not in (1, 2):
            raise ValueError(f'ConvNeXt: version must be 1 or 2, got '
                             f'{version!r}')
        if version == 2:
            params.update(use_grn=True, ls_init_value=None)
        params.update(timm_kwargs)
        super().__init__(in_chans=in_chans, num_classes=0,
                         drop_path_rate=drop_path_rate, **params)
        # same parameters and value, half the passes over the hidden maps
        use_few_pass_grn(self)
        self.arch_name = arch_name
        self.version = version
        self.in_chans = in_chans
        self.out_indices = sorted(i % len(self.stages) for i in out_indices)
        self.model_args = dict(
            {k: list(v) if isinstance(v, tuple) else v
             for k, v in params.items()}, in_chans=in_chans)
        self.init_cfg = init_cfg
        self.setup_finetune(frozen_stages, freeze_norm, lora)

    def finetune_parts(self) -> tuple[list, list[list], list]:
        """Stem, one list per stage (its downsampling included), and what
        follows (for ``frozen_stages``)."""
        return ([self.stem], [[stage] for stage in self.stages],
                [self.norm_pre, self.head])

    @property
    def timm_name(self) -> str:
        """The timm architecture these weights load into."""
        if self.arch_name == 'custom':
            return 'convnextv2_atto' if self.version == 2 else 'convnext_atto'
        return (f'convnextv2_{self.arch_name}' if self.version == 2 else
                f'convnext_{self.arch_name}')

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (timm initialised the weights when built)."""
        self._init_from_cfg()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args: x (Tensor): (B, in_chans, H, W). Returns: the maps of the
        stages in ``out_indices``."""
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
