"""Loading encoder weights into a core backbone from a training checkpoint
(MAE/FCMAE pretraining, a classifier fine-tune) or a timm ``.safetensors``.

Keys are timm names; a checkpoint of a whole model carries them under a
prefix (``backbone.``) that is stripped, and the rest (decoder, mask token)
is dropped and counted.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch
from torch import nn

from perception.fileio import CheckpointError, load_checkpoint_file


def read_state_dict(path: str, trust: bool = False) -> tuple[dict, dict]:
    """Read ``(state_dict, meta)`` from ``.pth`` (mmengine/torch) or
    ``.safetensors``.

    ``.pth`` files are read with ``weights_only=True`` (the safe loader of
    :mod:`perception.fileio`); ``trust=True`` allows full unpickling for
    files you trust.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist; give '
                                'the path of a .pth or .safetensors file')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path), {}
    ckpt = load_checkpoint_file(path, map_location='cpu', trust=trust)
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f'{path}: expected a dict of tensors or a dict with '
                         f"'state_dict', got {type(ckpt).__name__}")
    meta = dict(ckpt.get('meta') or {})
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt.get(key), Mapping):
            return dict(ckpt[key]), meta
    return {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}, meta


def strip_prefix(state_dict: Mapping[str, torch.Tensor], module: nn.Module,
                 prefix: str | None = None
                 ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Keep the keys under ``prefix`` (stripped); return them and the
    dropped keys. ``prefix=None`` picks ``backbone.`` (or ``encoder.``) when
    the module's own names are not found at top level."""
    own = set(module.state_dict())
    if prefix is None:
        prefix = ''
        if not own & set(state_dict):
            for candidate in ('backbone.', 'encoder.', 'net.'):
                if any(k.startswith(candidate) for k in state_dict):
                    prefix = candidate
                    break
    kept, dropped = {}, []
    for key, value in state_dict.items():
        if key.startswith(prefix):
            kept[key[len(prefix):]] = value
        else:
            dropped.append(key)
    return kept, dropped


def load_pretrained(module: nn.Module, checkpoint: str,
                    prefix: str | None = None, trust: bool = False,
                    logger=None) -> dict[str, list[str]]:
    """Load encoder weights into ``module`` (non-strict) and report keys.

    Position embeddings of another grid size are resampled; anything the
    module has that the file lacks is ``missing``, anything under the prefix
    the module lacks is ``unexpected``, keys outside the prefix (decoder,
    mask token) are ``dropped``.

    Returns:
        ``dict(missing=[...], unexpected=[...], dropped=[...])``.
    """
    state_dict, _ = read_state_dict(checkpoint, trust)
    state_dict, dropped = strip_prefix(state_dict, module, prefix)
    adapt = getattr(module, 'adapt_state_dict', None)
    if adapt is not None:
        state_dict = adapt(state_dict)
    own = module.state_dict()
    mismatched = [k for k, v in state_dict.items()
                  if k in own and own[k].shape != v.shape]
    if mismatched:
        details = ', '.join(f'{k}: file {tuple(state_dict[k].shape)} vs '
                            f'model {tuple(own[k].shape)}' for k in mismatched)
        raise CheckpointError(f'{checkpoint}: shapes differ ({details}); build '
                         'the backbone with the settings it was trained with '
                         '(its pretrained_cfg)')
    result = module.load_state_dict(state_dict, strict=False)
    report = dict(missing=list(result.missing_keys),
                  unexpected=list(result.unexpected_keys), dropped=dropped)
    if logger is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
    logger.info(
        f'{type(module).__name__}: loaded {checkpoint} '
        f'({len(state_dict) - len(report["unexpected"])} tensors); '
        f'missing keys: {report["missing"] or "none"}; unexpected keys: '
        f'{report["unexpected"] or "none"}; dropped {len(dropped)} keys '
        f'outside the backbone')
    return report


class PretrainedMixin:
    """``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=None)`` on a
    timm-derived backbone, applied by mmengine's ``init_weights()``."""

    init_cfg: dict | None = None
    load_report: dict | None = None

    def _init_from_cfg(self) -> None:
        cfg = dict(self.init_cfg or {})
        if not cfg:
            return
        kind = cfg.pop('type', None)
        if kind != 'Pretrained':
            raise ValueError(f"{type(self).__name__}: init_cfg type must be "
                             f"'Pretrained' (weights from a file), got {kind!r}")
        if 'checkpoint' not in cfg:
            raise ValueError(f'{type(self).__name__}: init_cfg needs '
                             "'checkpoint' (path of a .pth or .safetensors)")
        self.load_report = load_pretrained(
            self, cfg['checkpoint'], prefix=cfg.get('prefix'),
            trust=cfg.get('trust', False))
        self.is_init = True
