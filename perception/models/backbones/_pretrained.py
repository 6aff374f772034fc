"""Loading encoder weights into a core backbone from a training checkpoint
(MAE/FCMAE pretraining, a classifier fine-tune), a training work dir, an
``export-backbone`` folder or a timm ``.safetensors``: no conversion step.

Keys are timm names; a checkpoint of a whole model carries them under a
prefix (``backbone.``) that is stripped, and the rest (decoder, mask token)
is dropped and counted. A load that fills none of the backbone's weights is
an error.
"""
from __future__ import annotations

import json
import os
from typing import Mapping

import torch
from torch import nn

from perception.fileio import CheckpointError, load_checkpoint_file, resolve_checkpoint
from perception.models.lora import lora_parameter_names

#: what ``perception export-backbone`` writes into its folder.
EXPORT_WEIGHTS, EXPORT_CONFIG = 'model.safetensors', 'config.json'
#: prefixes tried, in order, when the backbone's names are not top-level.
AUTO_PREFIXES = ('backbone.', 'encoder.', 'net.')


def resolve_weights(path: str) -> str:
    """The weights file behind ``path``: the file itself, an
    ``export-backbone`` folder's ``model.safetensors``, or the checkpoint a
    work dir's ``last_checkpoint`` names.

    Raises:
        FileNotFoundError: nothing usable at ``path`` (the message says what
            each kind of path must hold).
    """
    path = os.path.expanduser(os.fspath(path))
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, EXPORT_WEIGHTS)):
            return os.path.join(path, EXPORT_WEIGHTS)
        if os.path.isfile(os.path.join(path, 'last_checkpoint')):
            return resolve_checkpoint(path)
        raise FileNotFoundError(
            f'{path!r} is a folder with neither {EXPORT_WEIGHTS} (an '
            'export-backbone folder) nor last_checkpoint (a training work '
            'dir); give one of those or a .pth / .safetensors file')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist; give '
                                'the path of a .pth or .safetensors file, a '
                                'training work dir or an export-backbone '
                                'folder')
    return path


def read_state_dict(path: str, trust: bool = False) -> tuple[dict, dict]:
    """Read ``(state_dict, meta)`` from ``.pth`` (mmengine/torch),
    ``.safetensors``, a work dir or an ``export-backbone`` folder (whose
    ``config.json`` gives ``meta['pretrained_cfg']``).

    ``.pth`` files are read with ``weights_only=True`` (the safe loader of
    :mod:`perception.fileio`); ``trust=True`` allows full unpickling for
    files you trust.
    """
    path = resolve_weights(path)
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path), _export_meta(path)
    ckpt = load_checkpoint_file(path, map_location='cpu', trust=trust)
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f'{path}: expected a dict of tensors or a dict with '
                         f"'state_dict', got {type(ckpt).__name__}")
    meta = dict(ckpt.get('meta') or {})
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt.get(key), Mapping):
            return dict(ckpt[key]), meta
    return {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}, meta


def _export_meta(weights: str) -> dict:
    """``meta`` of an export-backbone folder: its pretrained_cfg."""
    config = os.path.join(os.path.dirname(weights), EXPORT_CONFIG)
    if not os.path.isfile(config):
        return {}
    try:
        with open(config, encoding='utf-8') as f:
            values = json.load(f)
    except ValueError as exc:
        raise CheckpointError(f'{config}: not valid JSON ({exc}); write it '
                              'again with perception export-backbone') from exc
    record = values.get('perception') if isinstance(values, dict) else None
    return dict(pretrained_cfg=record) if record else {}


def pick_prefix(state_dict: Mapping[str, torch.Tensor], module: nn.Module,
                prefix: str | None = None) -> str:
    """``prefix``, or when None: ``''`` if the module's own names are
    top-level keys, else the first of :data:`AUTO_PREFIXES` some key
    starts with (else ``''``)."""
    if prefix is not None:
        return prefix
    if set(module.state_dict()) & set(state_dict):
        return ''
    return next((c for c in AUTO_PREFIXES
                 if any(k.startswith(c) for k in state_dict)), '')


def strip_prefix(state_dict: Mapping[str, torch.Tensor], module: nn.Module,
                 prefix: str | None = None
                 ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Keep the keys under ``prefix`` (stripped); return them and the
    dropped keys. ``prefix=None``: see :func:`pick_prefix`."""
    prefix = pick_prefix(state_dict, module, prefix)
    kept, dropped = {}, []
    for key, value in state_dict.items():
        if key.startswith(prefix):
            kept[key[len(prefix):]] = value
        else:
            dropped.append(key)
    return kept, dropped


def _nothing_loaded(module: nn.Module, weights: str, keys: list[str],
                    prefix: str | None, used: str) -> str:
    """Why no weight of ``weights`` fits ``module``, and the fix."""
    own = list(module.state_dict())
    # a prefix under which at least half of the backbone's names are found
    found: dict[str, int] = {}
    for key in keys:
        for name in own:
            if key.endswith('.' + name):
                found[key[:-len(name)]] = found.get(key[:-len(name)], 0) + 1
    found = {p: n for p, n in found.items() if 2 * n >= len(own)}
    tops: dict[str, int] = {}
    for key in keys:
        top = key.split('.')[0] + ('.' if '.' in key else '')
        tops[top] = tops.get(top, 0) + 1
    tried = (f'prefix {used!r}' if prefix is not None else
             f"prefixes '' and {', '.join(map(repr, AUTO_PREFIXES))} "
             f'(auto; {used!r} chosen)')
    hint = (f"set init_cfg prefix={max(found, key=found.get)!r}, where this "
            "backbone's weights are in that file" if found else
            'check that the file holds weights of this architecture (its '
            'pretrained_cfg), or set init_cfg prefix= to where they are')
    shown = ', '.join(f'{t} ({n})' for t, n in sorted(
        tops.items(), key=lambda kv: -kv[1])[:5])
    return (f'{type(module).__name__}: no weight loaded from {weights}: with '
            f"{tried} none of its {len(keys)} keys is one of the backbone's "
            f'{len(own)} (e.g. {own[0] if own else "-"}); its keys start '
            f'with {shown or "nothing (empty file)"}. To fix, {hint}')


def load_pretrained(module: nn.Module, checkpoint: str,
                    prefix: str | None = None, trust: bool = False,
                    logger=None) -> dict[str, list[str]]:
    """Load encoder weights into ``module`` (non-strict) and report keys.

    ``checkpoint`` is a ``.pth`` / ``.safetensors`` file, a training work
    dir (the checkpoint its ``last_checkpoint`` names) or an
    ``export-backbone`` folder. Position embeddings of another grid size are
    resampled; anything the module has that the file lacks is ``missing``
    (LoRA matrices, which start from their initialisation, excepted),
    anything under the prefix the module lacks is ``unexpected``, keys
    outside the prefix (decoder, mask token) are ``dropped``.

    Returns:
        ``dict(missing=[...], unexpected=[...], dropped=[...])``.

    Raises:
        perception.fileio.CheckpointError: no weight of the file fits the
            module (the message names the file, the prefixes tried and the
            fix), or shapes differ.
    """
    weights = resolve_weights(checkpoint)
    state_dict, _ = read_state_dict(weights, trust)
    used = pick_prefix(state_dict, module, prefix)
    keys = list(state_dict)
    state_dict, dropped = strip_prefix(state_dict, module, used)
    adapt = getattr(module, 'adapt_state_dict', None)
    if adapt is not None:
        state_dict = adapt(state_dict)
    own = module.state_dict()
    if not any(k in own for k in state_dict):
        raise CheckpointError(_nothing_loaded(module, weights, keys, prefix,
                                              used))
    mismatched = [k for k, v in state_dict.items()
                  if k in own and own[k].shape != v.shape]
    if mismatched:
        details = ', '.join(f'{k}: file {tuple(state_dict[k].shape)} vs '
                            f'model {tuple(own[k].shape)}' for k in mismatched)
        raise CheckpointError(f'{weights}: shapes differ ({details}); build '
                         'the backbone with the settings it was trained with '
                         '(its pretrained_cfg)')
    result = module.load_state_dict(state_dict, strict=False)
    fresh = set(lora_parameter_names(module))
    report = dict(missing=[k for k in result.missing_keys if k not in fresh],
                  unexpected=list(result.unexpected_keys), dropped=dropped)
    if logger is None:
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
    logger.info(
        f'{type(module).__name__}: loaded {weights} '
        f'({len(state_dict) - len(report["unexpected"])} tensors, prefix '
        f'{used!r}); missing keys: {report["missing"] or "none"}; unexpected '
        f'keys: {report["unexpected"] or "none"}; dropped {len(dropped)} keys '
        f'outside the backbone'
        + (f'; {len(fresh)} LoRA matrices start fresh' if fresh else ''))
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
                             "'checkpoint' (a .pth or .safetensors file, a "
                             'training work dir or an export-backbone '
                             'folder)')
        self.load_report = load_pretrained(
            self, cfg['checkpoint'], prefix=cfg.get('prefix'),
            trust=cfg.get('trust', False))
        self.is_init = True
