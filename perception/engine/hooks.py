"""Hooks every run built by :mod:`perception.engine.launch` gets. Each does
one thing."""
from __future__ import annotations

import json
import warnings

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from perception.engine.checkpoint import (decode_state, encode_state,
                                          unsafe_entries)
from perception.registry import HOOKS


@HOOKS.register_module()
class CheckpointStateHook(Hook):
    """Store runner and message-hub state (``HistoryBuffer``, numpy values)
    as tensors and plain containers, so the checkpoint loads with
    ``torch.load(weights_only=True)``; restore it after loading.

    Runs last before saving (other hooks add their state first).
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in list(checkpoint):
            checkpoint[key] = encode_state(checkpoint[key])
        left = unsafe_entries(checkpoint)
        if left:
            warnings.warn(
                'these checkpoint entries are not tensors or plain '
                f"containers: {', '.join(left)}; loading the checkpoint "
                'will need --trust-checkpoint. Store them as tensors, '
                'numbers, strings, lists or dicts.')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # perception's loader already decodes; this covers checkpoints
        # handed to the runner by other means.
        decode_state(checkpoint)


def model_pretrained_cfg(model) -> dict | None:
    """The preprocessing a model declares (timm's ``pretrained_cfg``):
    its data preprocessor's ``pretrained_cfg()`` updated with the model's
    own; ``None`` when neither defines one."""
    if is_model_wrapper(model):
        model = model.module
    found = None
    for owner in (getattr(model, 'data_preprocessor', None), model):
        method = getattr(owner, 'pretrained_cfg', None)
        if callable(method):
            found = dict(found or {}, **(method() or {}))
    return found


@HOOKS.register_module()
class PretrainedCfgHook(Hook):
    """Store the model's preprocessing (``pretrained_cfg()`` of the model
    and/or its data preprocessor: input size, channels, mean/std, windows,
    channel meaning, architecture) in ``checkpoint['meta']['pretrained_cfg']``
    so fine-tuning, export and inference never guess it."""

    priority = 'NORMAL'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        cfg = model_pretrained_cfg(runner.model)
        if cfg is None:
            return
        try:
            cfg = json.loads(json.dumps(cfg))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f'pretrained_cfg() of {type(runner.model).__name__} must '
                f'return a JSON-able dict (numbers, strings, lists): {exc}'
            ) from exc
        checkpoint.setdefault('meta', {})['pretrained_cfg'] = cfg
