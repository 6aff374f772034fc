"""Any timm model as a multi-scale backbone (``features_only``): stage maps
for FPN-style necks, channels and strides from timm's ``feature_info``.

Weights never come from the internet at run time: they load from a local
file through ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``, with
timm's parameter names (a timm ``.safetensors``, a classifier fine-tune or
a detector checkpoint).
"""
from __future__ import annotations

from typing import Sequence

import timm
import torch
from timm.models import adapt_input_conv
from torch import nn

from perception.errors import UserError
from perception.models.backbones._pretrained import PretrainedMixin
from perception.registry import MODELS


class PretrainedDownloadError(UserError, ValueError):
    """``pretrained=True`` asked for a download at run time."""


@MODELS.register_module()
class TimmBackbone(PretrainedMixin, nn.Module):
    """A timm model built with ``features_only=True``.

    Args:
        model_name: a timm model name, e.g. ``'resnet10t'``,
            ``'mobilenetv3_small_050'``, ``'convnext_atto'``.
        pretrained: must stay False; downloading weights at run time is
            refused (download once, then pass the file in ``init_cfg``).
        out_indices: feature levels to return, as timm counts them
            (negative from the end). Default: the last three, strides
            8/16/32 for nearly every timm model; timm's (1, 2, 3) is strides
            4/8/16 for ResNets and MobileNets but 8/16/32 for ConvNeXts.
        in_chans: input channels; a 3-channel first convolution in the
            file is adapted as timm does (summed or repeated).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH, prefix=None)``
            (``.safetensors`` or ``.pth``), applied by ``init_weights()``.
        **kwargs: other ``timm.create_model`` arguments (``drop_path_rate``,
            ``output_stride``...).

    Attributes:
        channels (list[int]): channels of each returned map.
        strides (list[int]): stride of each returned map.
    """

    def __init__(self, model_name: str, pretrained: bool = False,
                 out_indices: Sequence[int] = (-3, -2, -1), in_chans: int = 3,
                 init_cfg: dict | None = None, **kwargs) -> None:
        if pretrained or kwargs.get('pretrained_cfg_overlay'):
            raise PretrainedDownloadError(
                f'TimmBackbone({model_name!r}): pretrained=True would download '
                'weights at run time, which this project never does; download '
                'them once (e.g. `huggingface-cli download timm/<model> '
                'model.safetensors`) and pass init_cfg=dict(type=\'Pretrained\', '
                "checkpoint='/path/to/model.safetensors')")
        super().__init__()
        self.model_name = model_name
        self.in_chans = in_chans
        self.model_args = dict(kwargs, in_chans=in_chans)
        self.model = timm.create_model(
            model_name, pretrained=False, features_only=True,
            out_indices=tuple(out_indices), in_chans=in_chans, **kwargs)
        info = self.model.feature_info
        self.out_indices = tuple(i % len(info.info) for i in info.out_indices)
        self.channels = list(info.channels())
        self.strides = list(info.reduction())
        self.init_cfg = init_cfg

    @property
    def timm_name(self) -> str:
        """The timm architecture these weights load into."""
        return self.model_name

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (timm initialised the weights when built)."""
        self._init_from_cfg()

    def adapt_state_dict(self, state_dict: dict) -> dict:
        """Map a file's keys to this module's: a timm model's names (the
        features model renames ``stages.0`` to ``stages_0`` and sits under
        ``model.``) or this module's own; adapt the first convolution to
        ``in_chans``."""
        own = self.state_dict()
        adapted = {}
        for key, value in state_dict.items():
            parts = key.split('.')
            candidates = [key, f'model.{key}', f'model.model.{key}']
            if len(parts) > 2:
                candidates.append('model.' + '_'.join(parts[:2]) + '.'
                                  + '.'.join(parts[2:]))
            adapted[next((c for c in candidates if c in own), key)] = value
        first = self.model.pretrained_cfg.get('first_conv') or ()
        for name in [first] if isinstance(first, str) else first:
            for key in (f'model.{name}.weight',
                        'model.' + name.replace('.', '_', 1) + '.weight'):
                value, mine = adapted.get(key), own.get(key)
                if (value is not None and mine is not None and value.ndim == 4
                        and value.shape[1] != mine.shape[1]):
                    adapted[key] = adapt_input_conv(self.in_chans,
                                                    value.float()).to(value.dtype)
        return adapted

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args: x (Tensor): (B, in_chans, H, W). Returns: one
        (B, channels[i], ~H / strides[i], ~W / strides[i]) map per level
        (the model's own rounding: most timm models round up)."""
        return tuple(self.model(x))
