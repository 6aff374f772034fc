"""A segmentor's or classifier's outputs on any backend -> the predictions
API of the PyTorch model (:meth:`Segmentor.predict`,
:meth:`Classifier.forward` in ``mode='predict'``):

- segmentation: ``pred_sem_seg`` (1, H0, W0) int64 in source pixels,
  through what the transforms recorded
  (:func:`perception.data.seg_to_source`): logits bilinearly, then arg-max
  (as the PyTorch model does), or an in-graph class map by nearest
  neighbour;
- classification: ``pred_score`` (C,) softmax and ``pred_label`` (1,).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from perception.structures import DataSample

__all__ = ['dense_predictions']


def _class_count_error(backend: Any, found: int) -> Exception:
    from perception.deploy.manifest import BundleError
    names = backend.class_names
    return BundleError(
        f"'{backend.source}': the model gives {found} classes but its "
        f'record names {len(names)} ({", ".join(names)}) in '
        'pretrained_cfg.class_names; the manifest belongs to another model: '
        're-export')


def _segmentation(backend: Any, output: torch.Tensor,
                  samples: Sequence[DataSample]) -> list[DataSample]:
    from mmengine.structures import PixelData

    from perception.data.geometry import PRED_SPACE_KEY
    from perception.data.seg_geometry import seg_to_source
    names = backend.class_names
    labels_out = backend.postprocess.get('output') == 'labels'
    if not labels_out and names and output.shape[1] != len(names):
        raise _class_count_error(backend, int(output.shape[1]))
    for sample, seg in zip(samples, output):
        if labels_out:
            labels = seg_to_source(sample, seg.long(), mode='nearest')[None]
        else:
            labels = seg_to_source(sample, seg.float()).argmax(0, keepdim=True)
        sample.pred_sem_seg = PixelData(data=labels.long().cpu())
        sample.set_metainfo({PRED_SPACE_KEY: 'source'})
    return list(samples)


def _classification(backend: Any, output: torch.Tensor,
                    samples: Sequence[DataSample]) -> list[DataSample]:
    names = backend.class_names
    if names and output.shape[-1] != len(names):
        raise _class_count_error(backend, int(output.shape[-1]))
    scores = output.float()
    if backend.postprocess.get('output') == 'logits':
        scores = scores.softmax(-1)
    return [s.set_pred_score(p) for s, p in zip(samples, scores.cpu())]


def dense_predictions(backend: Any, outputs: Sequence[torch.Tensor],
                      samples: Sequence[DataSample]) -> list[DataSample]:
    """``outputs`` of ``backend`` (a segmentation or classification model:
    one output) -> ``samples`` with their predictions set."""
    if backend.task == 'segmentation':
        return _segmentation(backend, outputs[0], samples)
    return _classification(backend, outputs[0], samples)
