"""``perception export``: a trained detector -> a verified deploy bundle
(layout in :mod:`perception.deploy.manifest`).

Stages, each leaving an artifact: load (config + checkpoint through safe
loading, LoRA merged, PretrainedCfg from the checkpoint's meta or the
config) -> torch export (dynamo, falling back to the legacy exporter with
the reason recorded) -> in-graph NMS if asked -> onnxslim -> metadata +
``model.onnx`` -> verification (checker, parity, op lint: JSON reports) ->
``manifest.json`` with the model's sha256. A failed gate raises
:class:`ExportError` (one line, exit 2) with the reports left on disk.

Default opset 18: the lowest the dynamo exporter implements natively (an
older one is a lossy down-conversion), and within TensorRT 10.3's parser
range (9..20), so the same file parses on JetPack 6 and TensorRT 11.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from perception.deploy.errors import ExportError
from perception.deploy.graph import (
    NMS_OUTPUTS,
    append_nms,
    name_dynamic_axes,
    save_model,
    set_metadata,
    simplify,
)
from perception.deploy.loading import eval_pipeline as _test_pipeline  # noqa: F401 - its old name
from perception.deploy.loading import load_model
from perception.deploy.manifest import (
    DYNAMIC_MODES,
    METADATA_KEY,
    MODEL_FILE,
    NMS_MODES,
    TARGETS,
    Manifest,
    sha256_file,
)

__all__ = ['ExportError', 'ExportOptions', 'ExportResult', 'DetectorGraph',
           'load_detector', 'export_detector', 'write_verified_bundle',
           'check_gates', 'DEFAULT_OPSET']

DEFAULT_OPSET = 18
#: opset range TensorRT's ONNX parser takes, by target.
TARGET_OPSETS = {'trt10.3': (9, 20), 'trt11': (9, 25)}


@dataclass
class ExportOptions:
    """How to export (see ``perception export --help``).

    Attributes:
        opset: ONNX opset (<= 20 for trt10.3, <= 25 for trt11).
        target: TensorRT target of the op lint.
        nms: ``'none'`` (boxes + scores, NMS outside) or ``'onnx'``.
        dynamic: ``'none'``, ``'batch'`` or ``'batch,hw'``.
        size: (H, W) of the graph input; default from the PretrainedCfg.
        score_thr, nms_iou, max_per_img: post-processing (the head's
            ``test_cfg`` when None).
        simplify: run onnxslim.
        atol_rel: max abs error allowed, relative to each output's scale.
        match_iou, match_score: detections above ``match_score`` must match
            at IoU >= ``match_iou``.
        batch_sizes: batches the parity check runs (dynamic batch).
        oplint_gate: fail the export on op-lint errors.
        legacy: use the legacy (TorchScript) exporter directly.
        parity_images: a folder of images the parity check runs on at the
            export size (through the PretrainedCfg), instead of noise.
        argmax: segmentors: the per-pixel class map computed in the graph
            (ArgMax, ``labels_dtype`` int64 or uint8) instead of logits.
        cls_output: classifiers: ``'scores'`` (softmax) or ``'logits'``.
        min_pixel_agreement: segmentors: share of pixels whose arg-max
            class ONNX Runtime and PyTorch must agree on.
    """

    opset: int = DEFAULT_OPSET
    target: str = 'trt10.3'
    nms: str = 'none'
    dynamic: str = 'batch'
    size: tuple[int, int] | None = None
    score_thr: float | None = None
    nms_iou: float | None = None
    max_per_img: int | None = None
    simplify: bool = True
    atol_rel: float = 1e-3
    match_iou: float = 0.99
    match_score: float = 0.3
    batch_sizes: Sequence[int] = (1, 2)
    oplint_gate: bool = True
    legacy: bool = False
    parity_images: str | None = None
    #: --fp16 / --int8 (perception.deploy.precision): 'fp32', 'fp16', 'int8'
    precision: str = 'fp32'
    calib_data: str | None = None
    calib_images: int = 64
    calib_method: str = 'minmax'
    max_drop: float | None = None
    int8_keep_head: bool | str = False
    gate_split: str | None = None
    gate_images: int = 0
    argmax: bool = False
    labels_dtype: str = 'int64'
    cls_output: str = 'scores'
    min_pixel_agreement: float = 0.999

    def check(self) -> None:
        if self.target not in TARGETS:
            raise ExportError(f'--target {self.target!r}: choose one of '
                              f'{", ".join(TARGETS)}')
        if self.nms not in NMS_MODES:
            raise ExportError(f'--nms {self.nms!r}: choose one of '
                              f'{", ".join(NMS_MODES)}')
        if self.dynamic not in DYNAMIC_MODES:
            raise ExportError(f'--dynamic {self.dynamic!r}: choose one of '
                              f'{", ".join(DYNAMIC_MODES)}')
        from perception.deploy.tasks import CLS_OUTPUTS, LABEL_DTYPES
        if self.labels_dtype not in LABEL_DTYPES:
            raise ExportError(f'--labels-dtype {self.labels_dtype!r}: choose '
                              f'one of {", ".join(LABEL_DTYPES)}')
        if self.cls_output not in CLS_OUTPUTS:
            raise ExportError(f'--cls-output {self.cls_output!r}: choose one '
                              f'of {", ".join(CLS_OUTPUTS)}')
        if not 0.0 <= self.min_pixel_agreement <= 1.0:
            raise ExportError(f'--min-pixel-agreement '
                              f'{self.min_pixel_agreement}: give a share '
                              'between 0 and 1 (default 0.999)')
        low, high = TARGET_OPSETS[self.target]
        if not low <= self.opset <= high:
            raise ExportError(
                f'--opset {self.opset}: TensorRT target {self.target} parses '
                f'opsets {low}..{high}; pick one in range (default '
                f'{DEFAULT_OPSET})')


@dataclass
class ExportResult:
    """What an export wrote: the bundle folder and its reports."""

    bundle_dir: str
    manifest: Manifest
    parity: dict = field(default_factory=dict)
    oplint: dict = field(default_factory=dict)
    checker: dict = field(default_factory=dict)
    precision: dict | None = None


class DetectorGraph(nn.Module):
    """What is exported: a detector's ``mode='tensor'`` forward.

    ``inputs`` (Tensor): (B, C, H, W), the data preprocessor's output.
    Returns boxes (B, N, 4) xyxy in input pixels and scores (B, N, C)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: torch.Tensor):
        return self.detector(inputs, mode='tensor')


# -- loading --------------------------------------------------------------

def load_detector(config: str, checkpoint: str,
                  cfg_options: Sequence[str] = ()) -> tuple[nn.Module, Any, dict]:
    """:func:`perception.deploy.loading.load_model` refusing anything but a
    detector: ``(model, pretrained_cfg, source)``."""
    return load_model(config, checkpoint, cfg_options, task='detection')


def _input_size(pretrained: Any, options: ExportOptions) -> tuple[int, int]:
    divisor = max(int(pretrained.pad_size_divisor or 1), 1)
    if options.size is not None:
        height, width = options.size
    elif pretrained.input_size is not None:
        height, width = pretrained.input_size[1:]
    else:
        raise ExportError('the model records no input size (pretrained_cfg '
                          'input_size is empty); pass --size HxW')
    if height % divisor or width % divisor:
        up = (-(-height // divisor) * divisor, -(-width // divisor) * divisor)
        if options.size is not None:
            raise ExportError(f'--size {height}x{width}: the model pads to '
                              f'multiples of {divisor}; use {up[0]}x{up[1]}')
        height, width = up
    return int(height), int(width)


# -- torch -> ONNX ----------------------------------------------------------

def _check_dynamic_hw(model: nn.Module, dynamic: str) -> None:
    backbone = getattr(model, 'backbone', None)
    if 'hw' in dynamic and hasattr(backbone, 'pos_embed'):
        raise ExportError(
            f'--dynamic {dynamic}: {type(backbone).__name__} has an absolute '
            'position embedding that depends on the input grid, so its '
            'height and width cannot vary in one graph; export --dynamic '
            'batch at the size you deploy (--size HxW)')


def _torch_export(graph: nn.Module, example: torch.Tensor,
                  options: ExportOptions, divisor: int,
                  outputs: dict[str, dict] | None = None) -> tuple[Any, dict]:
    """Export ``graph``; returns (ModelProto, exporter record).

    ``outputs``: the graph's output names, each with its axes (beyond the
    batch) that follow the input's height and width, for the legacy
    exporter's dynamic axes (default: a detector's boxes and scores)."""
    outputs = outputs or {'boxes': {1: 'num_priors'},
                          'scores': {1: 'num_priors'}}
    import onnx
    record: dict = dict(torch=torch.__version__, onnx=onnx.__version__)
    try:
        import onnxscript
        record['onnxscript'] = onnxscript.__version__
    except ImportError:
        record['onnxscript'] = None
    names = dict(input_names=['inputs'], output_names=list(outputs))
    reason = 'asked for (--legacy)' if options.legacy else None
    if not options.legacy:
        shapes: dict = {}
        if options.dynamic != 'none':
            shapes[0] = torch.export.Dim('batch', min=1, max=1024)
        if options.dynamic == 'batch,hw':
            shapes[2] = divisor * torch.export.Dim('height_blocks', min=1,
                                                    max=4096 // divisor)
            shapes[3] = divisor * torch.export.Dim('width_blocks', min=1,
                                                    max=4096 // divisor)
        try:
            program = torch.onnx.export(
                graph, (example,), dynamo=True, opset_version=options.opset,
                dynamic_shapes={'inputs': shapes} if shapes else None,
                external_data=False, verbose=False, **names)
            record.update(path='dynamo', fallback_reason=None)
            return program.model_proto, record
        except Exception as exc:  # noqa: BLE001 - recorded, then legacy
            text = re.sub(r'\x1b\[[0-9;]*m', '', str(exc)).strip().splitlines()
            reason = f'{type(exc).__name__}: {text[0] if text else ""}'[:500]
    import io
    axes: dict = {}
    if options.dynamic != 'none':
        axes = {'inputs': {0: 'batch'}, **{n: {0: 'batch'} for n in outputs}}
        if options.dynamic == 'batch,hw':
            axes['inputs'].update({2: 'height', 3: 'width'})
            for name, follow in outputs.items():
                axes[name].update(follow)
    buffer = io.BytesIO()
    try:
        torch.onnx.export(graph, (example,), buffer, dynamo=False,
                          opset_version=options.opset, dynamic_axes=axes,
                          do_constant_folding=True, **names)
    except Exception as exc:
        raise ExportError(f'torch could not export the model with either '
                          f'exporter (dynamo: {reason}; legacy: '
                          f'{type(exc).__name__}: {exc})') from exc
    record.update(path='legacy', fallback_reason=reason)
    return onnx.load_from_string(buffer.getvalue()), record


def _manifest(model_proto: Any, pretrained: Any, options: ExportOptions,
              post: dict, exporter: dict, source: dict,
              size: tuple[int, int], task: str = 'detection',
              outputs: dict | None = None) -> Manifest:
    """The bundle's record; ``outputs``: what the outputs hold (default a
    detector's boxes and scores)."""
    def dims(info: Any) -> list:
        return [d.dim_value if d.HasField('dim_value') else
                (d.dim_param or '?') for d in info.type.tensor_type.shape.dim]

    init = {i.name for i in model_proto.graph.initializer}
    graph_input = [i for i in model_proto.graph.input if i.name not in init][0]
    channels = pretrained.in_chans
    if outputs is None:
        outputs = dict(box_format='xyxy', box_space='input_pixels',
                       scores='sigmoid per class' if options.nms == 'none'
                       else 'score of each kept detection, 0 for padding')
        post = dict(post, nms=options.nms)
    return Manifest(
        task=task, pretrained_cfg=pretrained.to_dict(),
        input=dict(name=graph_input.name, layout='NCHW', dtype='float32',
                   shape=dims(graph_input), channels=channels,
                   channel_meaning=pretrained.channel_names(),
                   export_size=list(size),
                   holds='the data preprocessor output: normalized (mean/std '
                   'or CT windows) and padded (bottom/right) to '
                   'pad_size_divisor'),
        outputs=dict(names=[o.name for o in model_proto.graph.output],
                     shapes={o.name: dims(o) for o in model_proto.graph.output},
                     **outputs),
        postprocess=post,
        dynamic=options.dynamic, opset=options.opset, target=options.target,
        exporter=exporter, source=source)


def export_detector(config: str, checkpoint: str, out: str,
                    options: ExportOptions | None = None,
                    cfg_options: Sequence[str] = ()) -> ExportResult:
    """Export a detector to a verified deploy bundle in ``out``.

    Raises:
        ExportError: bad options, a model that cannot be exported, or a
            failed verification gate (reports are written first).
    """
    from perception import __version__
    options = options or ExportOptions()
    options.check()
    model, pretrained, source = load_detector(config, checkpoint, cfg_options)
    _check_dynamic_hw(model, options.dynamic)
    height, width = _input_size(pretrained, options)
    divisor = max(int(pretrained.pad_size_divisor or 1), 1)
    head_cfg = dict(getattr(model.head, 'test_cfg', {}) or {})
    post = dict(
        score_thr=float(options.score_thr if options.score_thr is not None
                        else head_cfg.get('score_thr', 0.05)),
        nms_iou=float(options.nms_iou if options.nms_iou is not None
                      else head_cfg.get('nms_iou', 0.6)),
        max_per_img=int(options.max_per_img if options.max_per_img is not None
                        else head_cfg.get('max_per_img', 100)))
    graph = DetectorGraph(model).eval()
    batch = 2 if options.dynamic != 'none' else 1
    example = torch.randn(batch, pretrained.in_chans, height, width,
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        proto, exporter = _torch_export(graph, example, options, divisor)
    if options.simplify:
        proto, exporter['simplify'] = simplify(proto)
    name_dynamic_axes(proto)
    if options.nms == 'onnx':
        proto = append_nms(proto, **post)
    exporter['perception'] = __version__
    manifest = _manifest(proto, pretrained, options, post, exporter, source,
                         (height, width))
    if options.nms == 'onnx' and \
            tuple(manifest.outputs['names']) != NMS_OUTPUTS:
        raise ExportError(f'in-graph NMS left outputs '
                          f'{manifest.outputs["names"]}; a bug, please report')
    result = write_verified_bundle(out, proto, graph, manifest, options)
    if options.precision != 'fp32':  # explicit FP16 / INT8, gated
        from perception.deploy.precision import precision_for_export
        result.precision = precision_for_export(out, options, config,
                                                cfg_options)
        result.manifest = Manifest.read(out)
    return result


def write_verified_bundle(out: str, proto: Any, graph: torch.nn.Module,
                          manifest: Manifest,
                          options: ExportOptions) -> ExportResult:
    """Write ``proto`` (manifest in its metadata) and the manifest into
    ``out``, run every verification and raise :func:`check_gates`'s error
    when one failed."""
    from perception import __version__
    from perception.deploy.verify import verify_bundle
    pretrained = manifest.pretrained
    set_metadata(proto, {METADATA_KEY: manifest.metadata_json(),
                         'class_names': ','.join(pretrained.class_names),
                         'producer': f'perception {__version__}'})
    os.makedirs(out, exist_ok=True)
    onnx_path = os.path.join(out, MODEL_FILE)
    manifest.exporter['external_data'] = save_model(proto, onnx_path)
    manifest.sha256 = sha256_file(onnx_path)
    manifest.write(out)
    reports = verify_bundle(out, graph, manifest, options)
    check_gates(out, reports, options)
    return ExportResult(bundle_dir=out, manifest=manifest, **reports)


def check_gates(out: str, reports: dict[str, dict],
                options: ExportOptions) -> None:
    """Raise :class:`ExportError` (one line: every failed report's
    summary) when a verification gate failed; the op lint counts only with
    ``options.oplint_gate``."""
    failed = [name for name, report in reports.items()
              if not report.get('passed', False)
              and (name != 'oplint' or options.oplint_gate)]
    if failed:
        raise ExportError(f"export to '{out}' failed verification: "
                          + '; '.join(reports[n]['summary'] for n in failed))
