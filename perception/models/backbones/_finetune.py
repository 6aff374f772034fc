"""Fine-tuning switches of the core backbones, set in the backbone config as
mmdet/mmpretrain users expect: ``frozen_stages``, ``freeze_norm`` and
``lora``.

- ``frozen_stages=N``: the embeddings (ViT: patch embedding, class token,
  position embedding; ConvNeXt: the stem) and the first N blocks (ViT) or
  stages (ConvNeXt) stop training: ``requires_grad=False`` (so an optimizer
  constructor leaves them out) and eval mode whatever ``train()`` says (no
  dropout or drop-path). ``0`` freezes the embeddings only, ``-1`` nothing;
  N equal to the number of blocks/stages, or ``'all'``, freezes the whole
  backbone with its final norm: a linear probe (only neck and head train).
- ``freeze_norm=True``: every normalisation layer of the backbone is frozen
  and kept in eval mode (batch-norm statistics stay as loaded).
- ``lora=dict(rank=8, alpha=16, targets=..., dropout=0.0)``: LoRA
  (:mod:`perception.models.lora`) on the backbone's attention projections
  (ViT) or pointwise layers (ConvNeXt); every other backbone weight is
  frozen. Stages frozen by ``frozen_stages`` freeze their LoRA matrices too.
"""
from __future__ import annotations

from typing import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from perception.models.lora import VIT_TARGETS, apply_lora

#: normalisation layers (mmengine's DefaultOptimWrapperConstructor's set;
#: timm's LayerNorm2d is an nn.LayerNorm).
NORM_LAYERS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)

_LORA_KEYS = ('rank', 'alpha', 'targets', 'dropout')

Part = nn.Module | nn.Parameter


class FineTuneMixin:
    """``frozen_stages``, ``freeze_norm`` and ``lora`` for a backbone that
    says what its parts are (:meth:`finetune_parts`)."""

    #: LoRA targets when the ``lora`` dict names none.
    lora_targets: tuple[str, ...] = VIT_TARGETS
    frozen_stages: int = -1
    freeze_norm: bool = False

    def finetune_parts(self) -> tuple[list[Part], list[list[Part]],
                                      list[Part]]:
        """``(embeddings, stages, after)``: the parts before the first
        stage, one list per block/stage, and those after the last one."""
        raise NotImplementedError

    def setup_finetune(self, frozen_stages: int | str = -1,
                       freeze_norm: bool = False,
                       lora: dict | None = None) -> None:
        """Apply LoRA, then freeze; call at the end of ``__init__``.

        Raises:
            ValueError: ``frozen_stages`` out of range, or ``lora`` with
                keys other than rank, alpha, targets, dropout.
        """
        name = type(self).__name__
        if lora:
            unknown = sorted(set(lora) - set(_LORA_KEYS))
            if unknown:
                raise ValueError(f'{name}: lora has unknown keys {unknown}; '
                                 f'use {list(_LORA_KEYS)}')
            apply_lora(self, **dict(dict(targets=self.lora_targets), **lora))
        _, stages, _ = self.finetune_parts()
        if frozen_stages == 'all':
            frozen_stages = len(stages)
        if (isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int)
                or not -1 <= frozen_stages <= len(stages)):
            raise ValueError(
                f'{name}: frozen_stages must be -1 (train all), 0 (freeze the '
                f'embeddings), 1..{len(stages)} (and the first N '
                f"{'blocks' if name == 'VisionTransformer' else 'stages'}; "
                f"{len(stages)} or 'all' is a linear probe), got "
                f'{frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.freeze_norm = bool(freeze_norm)
        for part in self._frozen_parts():
            part.requires_grad_(False)
        for module in self._frozen_norms():
            module.requires_grad_(False)

    def _frozen_parts(self) -> list[Part]:
        if self.frozen_stages < 0:
            return []
        embeddings, stages, after = self.finetune_parts()
        parts = list(embeddings)
        for stage in stages[:self.frozen_stages]:
            parts += stage
        if self.frozen_stages == len(stages):
            parts += after
        return parts

    def _frozen_norms(self) -> Iterator[nn.Module]:
        if self.freeze_norm:
            yield from (m for m in self.modules()
                        if isinstance(m, NORM_LAYERS))

    def train(self, mode: bool = True):
        """``nn.Module.train``, with frozen parts kept in eval mode."""
        super().train(mode)
        if mode:
            for part in self._frozen_parts():
                if isinstance(part, nn.Module):
                    part.eval()
            for module in self._frozen_norms():
                module.eval()
        return self
