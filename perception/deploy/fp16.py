"""Explicit mixed-precision (FP16) ONNX: every node's precision is decided
here and written into the graph as Cast nodes and FP16 initializers, so
ONNX Runtime (CPU) computes what TensorRT's strongly typed network will,
and TensorRT 11 (no FP16 builder flag) builds it as is.

Which nodes run in FP16: compute and layout ops (Conv, MatMul, Gemm, the
element-wise ops, pooling, Resize, Concat, Reshape...) on the *feature
path*, i.e. nodes that a Conv/MatMul/Gemm depends on or that are one.
Kept in FP32: normalization and exponent ops whose FP16 range or rounding
is known to hurt (LayerNormalization, Softmax, ReduceMean, Pow, Sqrt, Exp,
Log, ...: ViTs need LayerNorm and Softmax in FP32), everything after the
last heavy op (the head's box decoding and sigmoid: boxes in pixels up to
4096 lose whole pixels in FP16), shape arithmetic, and any op not listed
in :data:`FP16_OPS`. The graph's inputs and outputs stay FP32, so a bundle
feeds the same float32 batch in every precision.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np

__all__ = ['convert_fp16', 'FP16_OPS', 'FP32_OPS', 'HEAVY_OPS',
           'node_precisions']

HEAVY_OPS = frozenset({'Conv', 'ConvTranspose', 'MatMul', 'Gemm'})
#: ops that may run in FP16 (on the feature path).
FP16_OPS = HEAVY_OPS | frozenset({
    'Add', 'Sub', 'Mul', 'Div', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh',
    'Gelu', 'Erf', 'HardSigmoid', 'HardSwish', 'Clip', 'MaxPool',
    'AveragePool', 'GlobalAveragePool', 'Resize', 'Concat', 'Reshape',
    'Transpose', 'Split', 'Slice', 'Flatten', 'Squeeze', 'Unsqueeze',
    'Identity', 'Pad', 'BatchNormalization', 'Neg', 'Abs', 'Where',
    'Expand', 'Tile', 'Gather', 'Max', 'Min', 'PRelu', 'Mish', 'Softplus',
    'DepthToSpace', 'SpaceToDepth'})
#: ops always kept in FP32 (also on the feature path).
FP32_OPS = frozenset({
    'LayerNormalization', 'Softmax', 'LogSoftmax', 'ReduceMean',
    'ReduceSum', 'ReduceL2', 'Pow', 'Sqrt', 'Reciprocal', 'Exp', 'Log',
    'InstanceNormalization', 'GroupNormalization', 'TopK',
    'NonMaxSuppression', 'Range', 'CumSum', 'RoiAlign', 'Cast'})
#: per op: the indices of inputs that carry data (others keep their type:
#: Resize's roi/scales, Pad's pads...).
_DATA_INPUTS = {'Resize': (0, ), 'Pad': (0, 2), 'Reshape': (0, ),
                'Slice': (0, ), 'Expand': (0, ), 'Tile': (0, ),
                'Gather': (0, ), 'Split': (0, ), 'Squeeze': (0, ),
                'Unsqueeze': (0, ), 'Where': (1, 2),
                'BatchNormalization': (0, 1, 2, 3, 4)}
_FLOAT, _FLOAT16 = 1, 10


def _float_tensors(model: Any) -> set[str]:
    """Names of the float32 tensors of ``model`` (after shape inference)."""
    import onnx
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    names = {v.name for v in list(graph.value_info) + list(graph.input) +
             list(graph.output) if v.type.tensor_type.elem_type == _FLOAT}
    names |= {i.name for i in graph.initializer if i.data_type == _FLOAT}
    for node in graph.node:
        if node.op_type == 'Constant':
            for attr in node.attribute:
                if attr.name == 'value' and attr.t.data_type == _FLOAT:
                    names.add(node.output[0])
    return names


def _feature_path(nodes: list) -> set[int]:
    """Indices of nodes that are heavy or that a heavy node depends on."""
    producer = {out: i for i, n in enumerate(nodes) for out in n.output}
    marked: set[int] = set()
    stack = [i for i, n in enumerate(nodes) if n.op_type in HEAVY_OPS]
    while stack:
        i = stack.pop()
        if i in marked:
            continue
        marked.add(i)
        stack += [producer[x] for x in nodes[i].input if x in producer]
    return marked


def node_precisions(model: Any, keep_fp32: Iterable[str] = (),
                    block_ops: Iterable[str] = ()) -> dict[str, str]:
    """Node name -> ``'fp16'`` or ``'fp32'`` as :func:`convert_fp16` decides
    (names are made unique first: unnamed nodes get ``<op>_<index>``)."""
    nodes = list(model.graph.node)
    path = _feature_path(nodes)
    blocked = FP32_OPS | set(block_ops)
    keep = set(keep_fp32)
    out = {}
    for i, node in enumerate(nodes):
        fp16 = (i in path and node.op_type in FP16_OPS
                and node.op_type not in blocked and node.name not in keep
                and node.domain in ('', 'ai.onnx')
                and not any(a.type in (5, 10) for a in node.attribute))
        out[node.name] = 'fp16' if fp16 else 'fp32'
    return out


def _name_nodes(model: Any) -> None:
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f'{node.op_type}_{i}'
        seen.add(node.name)


def convert_fp16(model: Any, keep_fp32: Iterable[str] = (),
                 block_ops: Iterable[str] = ()) -> tuple[Any, dict]:
    """An explicit FP16 copy of ``model`` (an ``onnx.ModelProto``).

    Args:
        keep_fp32: node names to keep in FP32 besides the rule above.
        block_ops: more op types to keep in FP32.

    Returns:
        ``(model, record)``: the converted ModelProto and ``record`` with
        ``nodes`` (name -> precision), ``counts`` (precision -> op ->
        count) and ``casts`` (Cast nodes inserted).
    """
    import onnx
    from onnx import helper, numpy_helper
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _name_nodes(model)
    graph = model.graph
    floats = _float_tensors(model)
    precisions = node_precisions(model, keep_fp32, block_ops)
    inits = {i.name: i for i in graph.initializer}
    half: set[str] = set()  # tensors now FP16
    casts: dict[tuple[str, int], str] = {}
    new_nodes, new_inits = [], []

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            out = f'{name}__{"fp16" if to == _FLOAT16 else "fp32"}'
            if to == _FLOAT16 and name in inits:
                array = numpy_helper.to_array(inits[name])
                array = np.clip(array, -65504, 65504).astype(np.float16)
                new_inits.append(numpy_helper.from_array(array, out))
            else:
                new_nodes.append(helper.make_node(
                    'Cast', [name], [out], to=to, name=f'cast_{out}'))
            casts[key] = out
        return casts[key]

    for node in list(graph.node):
        fp16 = precisions[node.name] == 'fp16'
        data = _DATA_INPUTS.get(node.op_type)
        for j, x in enumerate(node.input):
            if not x:
                continue
            if fp16 and x in floats and x not in half and \
                    (data is None or j in data):
                node.input[j] = cast(x, _FLOAT16)
            elif not (fp16 and (data is None or j in data)) and x in half:
                node.input[j] = cast(x, _FLOAT)
        if fp16:
            half.update(o for o in node.output if o in floats)
        new_nodes.append(node)
    outputs = {o.name for o in graph.output}
    for name in sorted(outputs & half):  # outputs stay float32
        renamed = f'{name}__fp16out'
        for node in new_nodes:
            node.output[:] = [renamed if o == name else o for o in node.output]
            node.input[:] = [renamed if i == name else i for i in node.input]
        new_nodes.append(helper.make_node('Cast', [renamed], [name], to=_FLOAT,
                                          name=f'cast_{name}_fp32'))
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.value_info[:]  # stale types; shape inference redoes them
    counts: dict[str, Counter] = {'fp16': Counter(), 'fp32': Counter()}
    by_name = {n.name: n.op_type for n in new_nodes}
    for name, precision in precisions.items():
        counts[precision][by_name[name]] += 1
    record = dict(nodes=precisions, casts=len(casts),
                  counts={k: dict(sorted(v.items())) for k, v in counts.items()})
    return model, record
