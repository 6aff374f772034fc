"""``perception export`` of segmentors and classifiers: the same stages
and gates as a detector's (:mod:`perception.deploy.export`: safe loading,
dynamo export with the legacy fallback, onnxslim, metadata, checker,
ONNX Runtime vs PyTorch parity, TensorRT op lint, reports beside the
model), with the task's own outputs (:mod:`perception.deploy.tasks`):

- a segmentor: ``logits`` (B, C, H, W) at the input size, or with
  ``argmax`` the class map ``labels`` (B, H, W) computed in the graph
  (ArgMax over the classes, then a Cast to uint8 if asked);
- a classifier: ``scores`` (B, C) softmax, or ``logits`` (B, C).

:func:`export_model` picks the path by the config's model type.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from perception.deploy.errors import ExportError
from perception.deploy.export import (
    ExportOptions,
    ExportResult,
    _check_dynamic_hw,
    _input_size,
    _manifest,
    _torch_export,
    check_gates,
    export_detector,
    write_verified_bundle,
)
from perception.deploy.graph import simplify

__all__ = ['SegmentorGraph', 'ClassifierGraph', 'export_model',
           'export_dense', 'check_gates']


class SegmentorGraph(nn.Module):
    """What is exported of a segmentor.

    ``inputs`` (Tensor): (B, C, H, W), the data preprocessor's output.
    Returns logits (B, K, H, W), or with ``argmax`` the class of each input
    pixel (B, H, W) int64 (uint8 with ``labels_dtype='uint8'``)."""

    def __init__(self, model: nn.Module, argmax: bool = False,
                 labels_dtype: str = 'int64') -> None:
        super().__init__()
        self.model, self.argmax = model, argmax
        self.labels_dtype = labels_dtype

    @property
    def output_axes(self) -> dict[str, dict[int, str]]:
        """Output name -> its axes that follow the input's height/width."""
        if self.argmax:
            return {'labels': {1: 'height', 2: 'width'}}
        return {'logits': {2: 'height', 3: 'width'}}

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.from_logits(self.logits(inputs))

    def from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The graph's output from the model's logits."""
        if not self.argmax:
            return logits
        labels = logits.argmax(1)
        return labels.to(torch.uint8) if self.labels_dtype == 'uint8' \
            else labels


class ClassifierGraph(nn.Module):
    """What is exported of a classifier: ``inputs`` (B, C, H, W) ->
    ``scores`` (B, K) softmax, or ``logits`` (B, K)."""

    def __init__(self, model: nn.Module, output: str = 'scores') -> None:
        super().__init__()
        self.model, self.output = model, output

    @property
    def output_axes(self) -> dict[str, dict[int, str]]:
        return {self.output: {}}

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.from_logits(self.logits(inputs))

    def from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The graph's output from the model's logits."""
        return logits.float().softmax(-1) if self.output == 'scores' \
            else logits


def export_model(config: str, checkpoint: str, out: str,
                 options: ExportOptions | None = None,
                 cfg_options: Sequence[str] = ()) -> ExportResult:
    """Export the config's model (detector, segmentor or classifier) to a
    verified deploy bundle in ``out``; see :func:`export_dense` and
    :func:`perception.deploy.export.export_detector`."""
    from perception.deploy.tasks import task_of_config
    options = options or ExportOptions()
    options.check()
    task = task_of_config(config, cfg_options)
    if task == 'detection':
        if options.argmax:
            raise ExportError(f'--argmax: {config} builds a detector; the '
                              'option is for segmentors')
        return export_detector(config, checkpoint, out, options, cfg_options)
    return export_dense(config, checkpoint, out, options, cfg_options, task)


def _refuse(task: str, options: ExportOptions) -> None:
    """Options that mean nothing (or are not made yet) for ``task``."""
    if options.nms != 'none':
        raise ExportError(f'--nms {options.nms}: a {task} model has no '
                          'detections to suppress; drop --nms')
    if options.precision != 'fp32':
        raise ExportError(f'--{options.precision}: explicit FP16/INT8 graphs '
                          f'are made for detectors only; export the {task} '
                          'model without --fp16/--int8')
    if options.argmax and task != 'segmentation':
        raise ExportError('--argmax: the in-graph class map is for '
                          f'segmentors; this config builds a {task} model '
                          '(classifiers: --cls-output scores|logits)')


def _name_axes(proto: Any, output_axes: dict[str, dict[int, str]],
               num_classes: int, size: tuple[int, int] | None) -> None:
    """Readable names for the free axes of the input and outputs (the
    dynamo exporter writes ``32*height_blocks``); the axes the legacy
    exporter may leave free though they are not (classes, and the height
    and width of a graph of one ``size``) fixed."""
    fixed = dict(zip(('height', 'width'), size or ()))

    def rename(info: Any, names: dict[int, str]) -> None:
        for index, dim in enumerate(info.type.tensor_type.shape.dim):
            if dim.HasField('dim_value'):
                continue
            if names.get(index) in fixed:
                dim.dim_value = int(fixed[names[index]])
            elif index in names:
                dim.dim_param = names[index]
            elif index == 1 and info.name != 'labels' and num_classes:
                dim.dim_value = num_classes

    init = {i.name for i in proto.graph.initializer}
    for info in proto.graph.input:
        if info.name not in init:
            rename(info, {0: 'batch', 2: 'height', 3: 'width'})
    for info in proto.graph.output:
        rename(info, {0: 'batch', **output_axes.get(info.name, {})})


def _records(task: str, options: ExportOptions) -> tuple[dict, dict]:
    """(outputs record, postprocess record) of the manifest."""
    if task == 'classification':
        holds = ('softmax over the classes' if options.cls_output == 'scores'
                 else 'raw logits (softmax them for probabilities)')
        return dict(holds=holds), dict(output=options.cls_output)
    if options.argmax:
        return (dict(holds=f'class index of every input pixel (ArgMax over '
                     f'the logits), {options.labels_dtype}; mapped to source '
                     'pixels by nearest neighbour', space='input_pixels'),
                dict(output='labels', labels_dtype=options.labels_dtype))
    return (dict(holds='per-class logits of every input pixel; mapped to '
                 'source pixels bilinearly, then arg-maxed',
                 space='input_pixels'), dict(output='logits'))


def export_dense(config: str, checkpoint: str, out: str,
                 options: ExportOptions, cfg_options: Sequence[str] = (),
                 task: str = 'segmentation') -> ExportResult:
    """Export a segmentor or classifier to a verified deploy bundle.

    Raises:
        ExportError: options that do not apply to the task, a model that
            cannot be exported, or a failed verification gate (the reports
            are written first).
    """
    from perception import __version__
    from perception.deploy.loading import load_model
    options.check()
    _refuse(task, options)
    model, pretrained, source = load_model(config, checkpoint, cfg_options,
                                           task=task)
    num_classes = int(getattr(model, 'num_classes', 0) or
                      pretrained.num_classes or 0)
    if options.argmax and options.labels_dtype == 'uint8' and \
            num_classes > 256:
        raise ExportError(f'--labels-dtype uint8: {config} has {num_classes} '
                          'classes, more than uint8 holds; use int64')
    _check_dynamic_hw(model, options.dynamic)
    height, width = _input_size(pretrained, options)
    divisor = max(int(pretrained.pad_size_divisor or 1), 1)
    graph = (SegmentorGraph(model, options.argmax, options.labels_dtype)
             if task == 'segmentation' else
             ClassifierGraph(model, options.cls_output)).eval()
    batch = 2 if options.dynamic != 'none' else 1
    example = torch.randn(batch, pretrained.in_chans, height, width,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        proto, exporter = _torch_export(graph, example, options, divisor,
                                        graph.output_axes)
    if options.simplify:
        proto, exporter['simplify'] = simplify(proto)
    _name_axes(proto, graph.output_axes, num_classes,
               None if options.dynamic == 'batch,hw' else (height, width))
    exporter['perception'] = __version__
    outputs, post = _records(task, options)
    manifest = _manifest(proto, pretrained, options, post, exporter, source,
                         (height, width), task=task, outputs=outputs)
    return write_verified_bundle(out, proto, graph, manifest, options)

