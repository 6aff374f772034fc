"""Explicit INT8 ONNX: Q/DQ nodes written by ONNX Runtime's
``quantize_static`` (QDQ format, symmetric int8 activations and weights so
every zero point is 0, per-channel weights), calibrated on batches the
caller draws through the project's preprocessing
(:mod:`perception.deploy.calibration`).

Only the heavy ops (Conv, ConvTranspose, MatMul, Gemm) are quantized: what
TensorRT fuses into INT8 kernels; the rest (the head's box decoding,
LayerNorm, Softmax) stays in FP32 between DequantizeLinear nodes, which
ONNX Runtime runs as it is and TensorRT builds strongly typed.
``keep_head`` leaves the detection head unquantized (PTQ INT8 often
collapses detection heads; the gate says when).
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ['quantize_int8', 'head_nodes', 'QUANTIZED_OPS', 'qdq_report']

QUANTIZED_OPS = ('Conv', 'ConvTranspose', 'MatMul', 'Gemm')
_SCOPE_KEYS = ('pkg.torch.onnx.name_scopes', 'namespace')


def head_nodes(model: Any, scope: str = 'head') -> list[str]:
    """Names of the nodes of the detector's ``head`` module: the legacy
    exporter's ``/.../head/...`` names, the dynamo exporter's name scopes
    (``detector.head``), or (what survives onnxslim) a weight initializer
    named after the module (``detector.head.reg_preds.0.weight``)."""
    inits = {i.name for i in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if f'/{scope}/' in node.name or f'.{scope}.' in f'.{node.name}.':
            names.append(node.name)
            continue
        if any(x in inits and f'.{scope}.' in f'.{x}' for x in node.input):
            names.append(node.name)
            continue
        for prop in node.metadata_props:
            if prop.key in _SCOPE_KEYS and (
                    f"'detector.{scope}'" in prop.value
                    or f'detector.{scope}:' in prop.value
                    or f'detector.{scope}.' in prop.value):
                names.append(node.name)
                break
    return names


class _Reader:
    """ONNX Runtime CalibrationDataReader over (1, C, H, W) arrays."""

    def __init__(self, name: str, batches: Iterable[np.ndarray]) -> None:
        self._items = iter([{name: np.ascontiguousarray(b, np.float32)}
                            for b in batches])

    def get_next(self) -> dict | None:
        return next(self._items, None)


@contextlib.contextmanager
def _captured_root_logging():
    """Route what ``onnxruntime.quantization`` logs on the root logger
    (advice such as "consider pre-processing", which would otherwise make
    logging print to stderr and stay configured) into a list for the
    record; the root logger is left as it was."""
    root = logging.getLogger()
    messages: list[str] = []

    class _Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(f'{record.levelname}: {record.getMessage()}'[:300])

    handlers, level = root.handlers[:], root.level
    root.handlers = [_Capture(logging.WARNING)]
    root.setLevel(logging.WARNING)
    try:
        yield messages
    finally:
        root.handlers, root.level = handlers, level


def quantize_int8(model: Any, input_name: str,
                  batches: Sequence[np.ndarray],
                  exclude: Iterable[str] = (), method: str = 'minmax'
                  ) -> tuple[Any, dict]:
    """A Q/DQ INT8 copy of ``model`` (an FP32 ``onnx.ModelProto``).

    Args:
        input_name: the graph input the batches feed.
        batches: calibration inputs, each (1, C, H, W) float32, the data
            preprocessor's output at the export size.
        exclude: node names left unquantized (e.g. :func:`head_nodes`).
        method: ``'minmax'``, ``'percentile'`` (99.99) or ``'entropy'``.

    Returns:
        ``(model, record)``: the Q/DQ ModelProto and a record (settings,
        quantized and excluded nodes).
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    methods = dict(minmax=CalibrationMethod.MinMax,
                   percentile=CalibrationMethod.Percentile,
                   entropy=CalibrationMethod.Entropy)
    if method not in methods:
        raise ValueError(f'calibration method {method!r}: choose one of '
                         f'{sorted(methods)}')
    exclude = list(exclude)
    with tempfile.TemporaryDirectory(prefix='perception-int8-') as tmp:
        src, dst = os.path.join(tmp, 'fp32.onnx'), os.path.join(tmp, 'q.onnx')
        onnx.save(model, src)
        with _captured_root_logging() as messages:
            quantize_static(
                src, dst, _Reader(input_name, batches),
                quant_format=QuantFormat.QDQ, op_types_to_quantize=list(
                    QUANTIZED_OPS), per_channel=True, reduce_range=False,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude, calibrate_method=methods[method],
                extra_options=dict(ActivationSymmetric=True,
                                   WeightSymmetric=True,
                                   CalibMovingAverage=False,
                                   CalibPercentile=99.99))
        quantized = onnx.load(dst)
    record = dict(tool='onnxruntime.quantization.quantize_static',
                  format='QDQ', activations='int8 symmetric (zero point 0)',
                  weights='int8 symmetric per-channel', method=method,
                  calibration_batches=len(batches), excluded=exclude,
                  quantizer_messages=sorted(set(messages)))
    return quantized, record


def qdq_report(model: Any) -> dict:
    """Which nodes run in INT8: a heavy op whose data input comes from a
    DequantizeLinear runs in INT8 (TensorRT fuses Q/DQ into it); other
    nodes run in the float type of their inputs (FP32 here)."""
    from onnx import numpy_helper
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    nodes, counts = {}, {'int8': Counter(), 'fp32': Counter()}
    zero_points, axes = [], Counter()
    for node in model.graph.node:
        if node.op_type in ('QuantizeLinear', 'DequantizeLinear'):
            if len(node.input) > 2 and node.input[2] in inits:
                zero_points.append(int(np.abs(numpy_helper.to_array(
                    inits[node.input[2]])).max(initial=0)))
            axis = [a.i for a in node.attribute if a.name == 'axis']
            axes['per-channel' if axis and inits.get(node.input[1]) is not None
                 and numpy_helper.to_array(inits[node.input[1]]).size > 1
                 else 'per-tensor'] += 1
            continue
        first = producer.get(node.input[0]) if node.input else None
        int8 = node.op_type in QUANTIZED_OPS and first is not None and \
            first.op_type == 'DequantizeLinear'
        precision = 'int8' if int8 else 'fp32'
        nodes[node.name] = precision
        counts[precision][node.op_type] += 1
    return dict(nodes=nodes,
                counts={k: dict(sorted(v.items())) for k, v in counts.items()},
                max_abs_zero_point=max(zero_points, default=0),
                qdq_scales=dict(axes))
