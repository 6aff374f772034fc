"""What the core assemblies (Segmentor, Classifier) share: the class-count
check and the architecture part of the PretrainedCfg."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from perception.errors import UserError


class ModelConfigError(UserError, ValueError):
    """A model config contradicts itself (class names vs. the head)."""


def head_with_classes(what: str, head: dict, class_names: Sequence[str]
                      ) -> dict:
    """``head`` with ``num_classes`` filled from ``class_names``.

    Raises:
        ModelConfigError: the head says another number of classes.
    """
    head = dict(head)
    if class_names:
        head.setdefault('num_classes', len(class_names))
        if head['num_classes'] != len(class_names):
            raise ModelConfigError(
                f"{what}: head.num_classes={head['num_classes']} but "
                f'{len(class_names)} class_names ({", ".join(class_names)}); '
                'make them agree (or drop head.num_classes)')
    elif 'num_classes' not in head:
        raise ModelConfigError(f'{what}: give class_names (or '
                               'head.num_classes)')
    return head


def architecture_cfg(backbone: nn.Module, num_classes: int,
                     class_names: Sequence[str], task: str,
                     head: nn.Module) -> dict:
    """The model's part of :class:`~perception.data.PretrainedCfg`."""
    cfg = dict(num_classes=int(num_classes), class_names=list(class_names),
               extra=dict(task=task, head=type(head).__name__))
    if hasattr(backbone, 'timm_name'):
        cfg['architecture'] = backbone.timm_name
    if hasattr(backbone, 'model_args'):
        cfg['model_args'] = dict(backbone.model_args)
    if hasattr(backbone, 'in_chans'):
        cfg['in_chans'] = backbone.in_chans
    return cfg
