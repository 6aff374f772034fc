"""The tasks a deploy bundle can hold and what each one's graph outputs:
shared by the manifest (validation), the exporter, the verification and
the backends. Imports no torch at module level.

- ``detection``: ``boxes`` + ``scores`` (or in-graph NMS outputs);
  ``postprocess`` holds ``nms``, ``score_thr``, ``nms_iou``, ``max_per_img``.
- ``segmentation``: ``logits`` (B, C, H, W) at the input size, or with
  ``postprocess.output == 'labels'`` the per-pixel class map (B, H, W)
  computed in the graph (ArgMax over classes, ``labels_dtype`` int64 or
  uint8).
- ``classification``: ``scores`` (B, C) softmax, or ``logits`` (B, C).
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ['TASKS', 'NMS_MODES', 'SEG_OUTPUTS', 'CLS_OUTPUTS', 'LABEL_DTYPES',
           'task_of_model', 'task_of_config', 'validate_postprocess']

TASKS = ('detection', 'segmentation', 'classification')
#: where a detector's NMS runs: outside the graph or ONNX NonMaxSuppression.
NMS_MODES = ('none', 'onnx')
#: what a segmentation graph outputs: ``postprocess.output``.
SEG_OUTPUTS = ('logits', 'labels')
#: what a classification graph outputs: ``postprocess.output``.
CLS_OUTPUTS = ('scores', 'logits')
#: element types of a segmentation graph's in-graph class map.
LABEL_DTYPES = ('int64', 'uint8')


def task_of_model(model: Any) -> str:
    """``'segmentation'``, ``'classification'`` or ``'detection'`` for a
    built model (the core assemblies and :class:`TimmClassifier`)."""
    from perception.models import Classifier, Segmentor, TimmClassifier
    if isinstance(model, Segmentor):
        return 'segmentation'
    if isinstance(model, (Classifier, TimmClassifier)):
        return 'classification'
    return 'detection'


def task_of_config(config: str, cfg_options: Any = ()) -> str:
    """The task of the model ``config`` builds, read from its type (no
    model is built)."""
    import perception.models  # noqa: F401 - registers the core models
    from perception.engine.config import load_config
    from perception.models import Classifier, Segmentor, TimmClassifier
    from perception.registry import MODELS
    model_type = load_config(config, cfg_options).model.get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if isinstance(cls, type) and issubclass(cls, Segmentor):
        return 'segmentation'
    if isinstance(cls, type) and issubclass(cls, (Classifier, TimmClassifier)):
        return 'classification'
    return 'detection'


def validate_postprocess(task: str, post: dict,
                         bad: Callable[[str, str], Exception]) -> None:
    """Raise ``bad(field, what)`` for the first field of a task's
    ``postprocess`` record that is missing or wrong."""
    if task not in TASKS:
        raise bad('task', f'is {task!r}, not one of {TASKS}')
    post = post or {}
    if task == 'detection':
        if post.get('nms') not in NMS_MODES:
            raise bad('postprocess.nms', f"is {post.get('nms')!r}, not one "
                      f'of {NMS_MODES}')
        for key in ('score_thr', 'nms_iou', 'max_per_img'):
            if not isinstance(post.get(key), (int, float)):
                raise bad(f'postprocess.{key}', 'is missing or not a number')
        return
    allowed = SEG_OUTPUTS if task == 'segmentation' else CLS_OUTPUTS
    if post.get('output') not in allowed:
        raise bad('postprocess.output', f"is {post.get('output')!r}, not one "
                  f'of {allowed} ({task})')
    if task == 'segmentation' and post['output'] == 'labels' and \
            post.get('labels_dtype') not in LABEL_DTYPES:
        raise bad('postprocess.labels_dtype', f"is {post.get('labels_dtype')!r}"
                  f', not one of {LABEL_DTYPES}')
