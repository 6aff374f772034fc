"""LoRA: low-rank adaptation (Hu et al. 2021, "LoRA: Low-Rank Adaptation of
Large Language Models") of linear layers and 1x1 convolutions, merged into
plain ``nn.Linear`` / ``nn.Conv2d`` weights for export.

A LoRA layer computes ``W x + b + (alpha / rank) * B A dropout(x)`` with the
base ``W``, ``b`` frozen, ``A`` (rank, in) Kaiming-uniform and ``B``
(out, rank) zero, so a model is unchanged until ``B`` trains. The base
weights keep their names (``blocks.0.attn.qkv.weight``), so pretrained
weights load into a LoRA model unchanged; the matrices are ``...qkv.lora_A``
and ``...qkv.lora_B``.

Written here rather than taken from ``peft``: peft needs ``transformers`` and
wraps the model (``base_model.model.`` key prefixes), while mmengine's
runner, checkpoints and our pretrained loading want the module tree and its
names as they are. From a config, give the core backbones
``lora=dict(rank=8, alpha=16, targets=('qkv', 'proj'), dropout=0.0)``.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['LoRALinear', 'LoRAConv1x1', 'apply_lora', 'merge_lora',
           'lora_parameter_names', 'VIT_TARGETS', 'CONVNEXT_TARGETS']

#: attention projections of the core ViT (timm's ``Attention``).
VIT_TARGETS = ('qkv', 'proj')
#: pointwise layers of the core ConvNeXt blocks (Linear, or 1x1 convs
#: with ``conv_mlp``).
CONVNEXT_TARGETS = ('mlp.fc1', 'mlp.fc2')

logger = logging.getLogger('perception')


class _LoRA(nn.Module):
    """Frozen base weight and bias plus trainable ``lora_A``, ``lora_B``."""

    def __init__(self, base: nn.Module, in_features: int, out_features: int,
                 rank: int, alpha: float, dropout: float) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f'LoRA rank must be >= 1, got {rank}')
        weight = base.weight
        self.in_features, self.out_features = in_features, out_features
        self.rank, self.alpha = rank, float(alpha)
        self.scaling = self.alpha / rank
        self.weight = weight
        self.bias = base.bias
        weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        kw = dict(device=weight.device, dtype=weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, **kw))
        # as nn.Linear initialises its weight (and the LoRA paper, peft)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def delta_weight(self) -> torch.Tensor:
        """``scaling * B @ A``: (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def extra_repr(self) -> str:
        return (f'in={self.in_features}, out={self.out_features}, '
                f'rank={self.rank}, alpha={self.alpha:g}')


class LoRALinear(_LoRA):
    """LoRA on an ``nn.Linear``; the same ``weight``/``bias`` parameters.

    Args:
        base: the layer to adapt (its parameters are reused and frozen).
        rank: rank r of the update.
        alpha: the update is scaled by ``alpha / rank``.
        dropout: dropout on the LoRA branch's input.
    """

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16,
                 dropout: float = 0.0) -> None:
        super().__init__(base, base.in_features, base.out_features, rank,
                         alpha, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (Tensor): (..., in). Returns (..., out)."""
        low = F.linear(F.linear(self.lora_dropout(x), self.lora_A),
                       self.lora_B)
        return F.linear(x, self.weight, self.bias) + low * self.scaling

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + scaling * B A``."""
        layer = nn.Linear(self.in_features, self.out_features,
                          bias=self.bias is not None, device=self.weight.device,
                          dtype=self.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.weight + self.delta_weight())
            if self.bias is not None:
                layer.bias.copy_(self.bias)
        return layer


class LoRAConv1x1(_LoRA):
    """LoRA on a 1x1 ``nn.Conv2d`` (stride 1, one group), e.g. ConvNeXt's
    pointwise layers with ``conv_mlp``; arguments as :class:`LoRALinear`."""

    def __init__(self, base: nn.Conv2d, rank: int = 8, alpha: float = 16,
                 dropout: float = 0.0) -> None:
        if not _is_pointwise(base):
            raise ValueError(f'LoRAConv1x1 needs a 1x1 Conv2d with stride 1, '
                             f'no padding and one group, got {base}')
        super().__init__(base, base.in_channels, base.out_channels, rank,
                         alpha, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (Tensor): (B, in, H, W). Returns (B, out, H, W)."""
        low = F.conv2d(F.conv2d(self.lora_dropout(x),
                                self.lora_A[:, :, None, None]),
                       self.lora_B[:, :, None, None])
        return F.conv2d(x, self.weight, self.bias) + low * self.scaling

    def merged(self) -> nn.Conv2d:
        """A plain 1x1 ``nn.Conv2d`` with ``W + scaling * B A``."""
        layer = nn.Conv2d(self.in_features, self.out_features, 1,
                          bias=self.bias is not None, device=self.weight.device,
                          dtype=self.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.weight + self.delta_weight()[:, :, None,
                                                                 None])
            if self.bias is not None:
                layer.bias.copy_(self.bias)
        return layer


def _is_pointwise(module: nn.Module) -> bool:
    return (type(module) is nn.Conv2d and module.kernel_size == (1, 1)
            and module.stride == (1, 1) and module.padding == (0, 0)
            and module.dilation == (1, 1) and module.groups == 1)


def _matches(name: str, target: str) -> bool:
    """``target`` names the last dotted components of ``name``
    (``'proj'`` matches ``blocks.0.attn.proj``, not ``blocks.0.attn.projx``)."""
    want = target.split('.')
    return name.split('.')[-len(want):] == want


def _set_child(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition('.')
    setattr(root.get_submodule(parent) if parent else root, child, module)


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16,
               targets: Sequence[str] = VIT_TARGETS,
               dropout: float = 0.0) -> nn.Module:
    """Replace the targeted layers of ``model`` by LoRA layers, in place.

    Every parameter of ``model`` is frozen except the LoRA matrices (apply
    it to a backbone: a neck and head outside ``model`` keep training).

    Args:
        model: e.g. the core ``VisionTransformer`` or ``ConvNeXt``.
        rank: rank of each update.
        alpha: updates are scaled by ``alpha / rank``.
        targets: module names matched on their last dotted components:
            ``('qkv', 'proj')`` for the ViT's attention (the patch
            embedding's ``proj``, a strided conv, is not adapted),
            ``('mlp.fc1', 'mlp.fc2')`` for ConvNeXt blocks.
        dropout: dropout on the LoRA branch's input.

    Returns:
        ``model``.

    Raises:
        ValueError: no ``nn.Linear`` or 1x1 ``nn.Conv2d`` matches ``targets``.
    """
    if isinstance(targets, str):
        targets = (targets, )
    chosen, skipped = [], []
    for name, module in model.named_modules():
        if not name or not any(_matches(name, t) for t in targets):
            continue
        if type(module) is nn.Linear or _is_pointwise(module):
            chosen.append((name, module))
        elif not isinstance(module, _LoRA):
            skipped.append(f'{name} ({type(module).__name__})')
    if not chosen:
        layers = [n for n, m in model.named_modules()
                  if type(m) is nn.Linear or _is_pointwise(m)]
        raise ValueError(
            f'apply_lora: no nn.Linear or 1x1 nn.Conv2d of '
            f'{type(model).__name__} matches targets {tuple(targets)}; '
            f'layers it has: {", ".join(layers[:6]) or "none"}'
            f'{" ..." if len(layers) > 6 else ""} (ViT: (\'qkv\', \'proj\'), '
            f"ConvNeXt: ('mlp.fc1', 'mlp.fc2'))")
    model.requires_grad_(False)
    for name, module in chosen:
        kind = LoRALinear if type(module) is nn.Linear else LoRAConv1x1
        _set_child(model, name, kind(module, rank=rank, alpha=alpha,
                                     dropout=dropout))
    logger.info('LoRA rank %d, alpha %g on %d layers of %s; %d trainable '
                'parameters%s', rank, alpha, len(chosen), type(model).__name__,
                sum(p.numel() for p in model.parameters() if p.requires_grad),
                f'; not adapted (not Linear or 1x1 conv): {", ".join(skipped)}'
                if skipped else '')
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA layer of ``model`` into a plain ``nn.Linear`` /
    ``nn.Conv2d`` (for export); in place, no LoRA module is left.

    Returns:
        ``model`` (or the merged layer when ``model`` is itself one).
    """
    if isinstance(model, _LoRA):
        return model.merged()
    for name, module in list(model.named_modules()):
        if isinstance(module, _LoRA):
            layer = module.merged()
            layer.requires_grad_(module.weight.requires_grad)
            layer.train(module.training)
            _set_child(model, name, layer)
    return model


def lora_parameter_names(model: nn.Module) -> list[str]:
    """State-dict names of the LoRA matrices of ``model``."""
    return [f'{name}.{p}' if name else p for name, m in model.named_modules()
            if isinstance(m, _LoRA) for p in ('lora_A', 'lora_B')]
