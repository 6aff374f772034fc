"""The first stage of ``perception export``: a config and its checkpoint ->
the eval-mode model, its :class:`~perception.data.PretrainedCfg` and a
record of what was loaded (any task: detector, segmentor, classifier)."""
from __future__ import annotations

import os
from typing import Any, Sequence

from torch import nn

from perception.data.pretrained_cfg import config_pipeline
from perception.deploy.errors import ExportError

__all__ = ['load_model', 'eval_pipeline']

#: what a task's model has to be, in the words of the refusal.
_WANTED = {'detection': 'a detector with a dense head (Detector)',
           'segmentation': 'a segmentor (Segmentor)',
           'classification': 'a classifier (Classifier, TimmClassifier)'}


def load_model(config: str, checkpoint: str, cfg_options: Sequence[str] = (),
               task: str | None = None) -> tuple[nn.Module, Any, dict]:
    """Build the config's model, load ``checkpoint`` (a file, or a work
    dir: its latest) through safe loading, merge LoRA.

    Args:
        task: refuse a model of another task (``'detection'``...).

    Returns:
        ``(model, pretrained_cfg, source)``: the eval-mode model, its
        :class:`PretrainedCfg` (the checkpoint's ``meta['pretrained_cfg']``,
        else built from the config) and a record of what was loaded.
    """
    import perception.models  # noqa: F401 - registers the core models
    from perception.data.pretrained_cfg import PretrainedCfg
    from perception.deploy.tasks import task_of_model
    from perception.engine.config import load_config
    from perception.fileio import load_checkpoint_file, resolve_checkpoint
    from perception.models.lora import merge_lora
    from perception.registry import MODELS

    cfg = load_config(config, cfg_options)
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else \
        dict(cfg.model)
    # weights come from the checkpoint; never reach for pretraining dirs
    model_cfg.get('backbone', {}).pop('init_cfg', None)
    model_cfg.pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    found = task_of_model(model)
    if found == 'detection' and not hasattr(getattr(model, 'head', None),
                                            'predict_raw'):
        found = None
    if task is not None and found != task or found is None:
        raise ExportError(
            f'{config}: model {type(model).__name__} is not '
            f'{_WANTED.get(task or "", "a model perception export handles")}; '
            'perception export handles detectors (Detector), segmentors '
            '(Segmentor) and classifiers (Classifier, TimmClassifier)')
    path = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint_file(path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ExportError(f"checkpoint '{path}' holds no state_dict; pass a "
                          'checkpoint written by perception train')
    state = {k[7:] if k.startswith('module.') else k: v
             for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = [line.strip() for line in str(exc).splitlines()
                  if 'size mismatch' in line][:1] or [str(exc)[:200]]
        raise ExportError(f"checkpoint '{path}' does not fit {config}: "
                          f'{detail[0]} (and maybe more); pass the config the '
                          'checkpoint was trained with') from None
    missing = list(result.missing_keys)
    if missing or result.unexpected_keys:
        raise ExportError(
            f"checkpoint '{path}' does not fit {config}: "
            f'{len(missing)} missing keys (e.g. {missing[:3]}), '
            f'{len(result.unexpected_keys)} unexpected (e.g. '
            f'{list(result.unexpected_keys)[:3]}); pass the config the '
            'checkpoint was trained with')
    merge_lora(model)
    model.eval()
    meta = ckpt.get('meta') or {}
    if meta.get('pretrained_cfg'):
        pretrained = PretrainedCfg.from_dict(meta['pretrained_cfg'])
        origin = 'checkpoint meta'
    else:
        pretrained = PretrainedCfg.from_model(
            model, eval_pipeline(cfg),
            class_names=getattr(model, 'class_names', ()))
        origin = 'config'
    backbone = getattr(model, 'backbone', model)
    wanted = getattr(backbone, 'in_chans', None)
    if wanted is not None and pretrained.in_chans != wanted:
        raise ExportError(
            f'{config}: the pretrained_cfg (from the {origin}) gives '
            f'{pretrained.in_chans} input channels but the backbone takes '
            f'{wanted}; the config alone does not say how the channels are '
            'made (e.g. which CT slices): export a checkpoint written by '
            'perception train, whose meta records its pretrained_cfg')
    source = dict(config=os.path.basename(config),
                  checkpoint=os.path.basename(path),
                  pretrained_cfg_from=origin)
    return model, pretrained, source


def eval_pipeline(cfg: Any) -> list:
    """The test (else val) pipeline, also inside a ConcatDataset."""
    return config_pipeline(cfg)
