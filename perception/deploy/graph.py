"""ONNX graph edits made after the torch export: in-graph NMS, metadata,
simplification (with GELU written in the order ONNX Runtime fuses) and
saving a self-contained file.

In-graph NMS is written directly in ONNX (not traced), so the exporter path
does not matter and every op is one that ONNX Runtime and TensorRT's parser
both take: ``NonMaxSuppression`` with initializer thresholds, and a ``TopK``
with a constant K (TensorRT needs one) that pads the detections of each
image to ``max_per_img``.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = ['NMS_OUTPUTS', 'append_nms', 'name_dynamic_axes', 'set_metadata', 'simplify',
           'reorder_gelu', 'save_model', 'EXTERNAL_DATA_LIMIT']

#: outputs of a graph with ``--nms onnx``, in order.
NMS_OUTPUTS = ('num_dets', 'det_boxes', 'det_scores', 'det_labels')
#: protobuf cannot hold more; only above it are weights stored outside.
EXTERNAL_DATA_LIMIT = 2 * 1024 ** 3 - 64 * 1024 ** 2


def append_nms(model: Any, score_thr: float, nms_iou: float,
               max_per_img: int, boxes: str = 'boxes',
               scores: str = 'scores') -> Any:
    """Replace the outputs ``boxes`` (B, N, 4) and ``scores`` (B, N, C) of
    ``model`` by class-aware NMS results padded to ``max_per_img``:
    ``num_dets`` (B,) int64, ``det_boxes`` (B, M, 4) xyxy in input pixels,
    ``det_scores`` (B, M) (0 for padding), ``det_labels`` (B, M) int64 (-1
    for padding), best first. Returns ``model`` (edited in place)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    M = int(max_per_img)

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        graph.node.append(helper.make_node(op, inputs, outputs,
                                           name=f'nms/{outputs[0]}', **attrs))

    k_max = const('nms/max_boxes', np.array([M], dtype=np.int64))
    k_iou = const('nms/iou', np.array([nms_iou], dtype=np.float32))
    k_thr = const('nms/score_thr', np.array([score_thr], dtype=np.float32))
    c0 = const('nms/c0', np.array([0], dtype=np.int64))
    c1 = const('nms/c1', np.array([1], dtype=np.int64))
    c2 = const('nms/c2', np.array([2], dtype=np.int64))
    c02 = const('nms/c0_2', np.array([0, 2], dtype=np.int64))
    minus1 = const('nms/minus1', np.array(-1.0, dtype=np.float32))
    zero_f = const('nms/zero', np.array(0.0, dtype=np.float32))
    half = const('nms/half', np.array(-0.5, dtype=np.float32))
    k_topk = const('nms/k', np.array([M], dtype=np.int64))

    node('Transpose', [scores], ['nms/scores_t'], perm=[0, 2, 1])
    node('NonMaxSuppression', [boxes, 'nms/scores_t', k_max, k_iou, k_thr],
         ['nms/selected'], center_point_box=0)
    # selected: (K, 3) rows (batch, class, box)
    node('Slice', ['nms/selected', c0, c1, c1], ['nms/sel_b'])
    node('Slice', ['nms/selected', c1, c2, c1], ['nms/sel_c'])
    node('Squeeze', ['nms/sel_c', c1], ['nms/sel_c1'])
    node('GatherND', ['nms/scores_t', 'nms/selected'], ['nms/sel_scores'])
    node('Gather', ['nms/selected', c02], ['nms/sel_bi'], axis=1)
    node('GatherND', [boxes, 'nms/sel_bi'], ['nms/sel_boxes'])
    # a (B, K) table: a selected box's score in its own image's row, else -1
    node('Shape', [scores], ['nms/scores_shape'])
    node('Slice', ['nms/scores_shape', c0, c1, c0], ['nms/B'])
    node('Squeeze', ['nms/B', c0], ['nms/B_s'])
    zero_i = const('nms/zero_i', np.array(0, dtype=np.int64))
    one_i = const('nms/one_i', np.array(1, dtype=np.int64))
    node('Range', [zero_i, 'nms/B_s', one_i], ['nms/images'])
    node('Unsqueeze', ['nms/images', c1], ['nms/images_col'])
    node('Transpose', ['nms/sel_b'], ['nms/sel_b_row'], perm=[1, 0])
    node('Equal', ['nms/images_col', 'nms/sel_b_row'], ['nms/own'])
    node('Unsqueeze', ['nms/sel_scores', c0], ['nms/sel_scores_row'])
    node('Where', ['nms/own', 'nms/sel_scores_row', minus1], ['nms/table'])
    # pad with M columns of -1 so TopK's constant K always fits
    node('Concat', ['nms/B', k_topk], ['nms/pad_shape'], axis=0)
    node('ConstantOfShape', ['nms/pad_shape'], ['nms/pad'],
         value=numpy_helper.from_array(np.array([-1.0], dtype=np.float32)))
    node('Concat', ['nms/table', 'nms/pad'], ['nms/table_padded'], axis=1)
    node('TopK', ['nms/table_padded', k_topk], ['nms/top', 'nms/top_i'],
         axis=1, largest=1, sorted=1)
    node('Greater', ['nms/top', half], ['nms/valid'])
    node('Cast', ['nms/valid'], ['nms/valid_i'], to=TensorProto.INT64)
    node('ReduceSum', ['nms/valid_i', c1], ['num_dets'], keepdims=0)
    node('Where', ['nms/valid', 'nms/top', zero_f], ['det_scores'])
    # boxes and labels of the picked columns (padding rows: zeros / -1)
    four = const('nms/four', np.array([4], dtype=np.int64))
    node('Concat', [k_topk, four], ['nms/zb_shape'], axis=0)
    node('ConstantOfShape', ['nms/zb_shape'], ['nms/zero_boxes'],
         value=numpy_helper.from_array(np.array([0.0], dtype=np.float32)))
    node('Concat', ['nms/sel_boxes', 'nms/zero_boxes'], ['nms/boxes_padded'],
         axis=0)
    node('Gather', ['nms/boxes_padded', 'nms/top_i'], ['nms/picked_boxes'],
         axis=0)
    node('Unsqueeze', ['nms/valid', c2], ['nms/valid_col'])
    node('Where', ['nms/valid_col', 'nms/picked_boxes', zero_f], ['det_boxes'])
    node('ConstantOfShape', [k_topk], ['nms/pad_labels'],
         value=numpy_helper.from_array(np.array([-1], dtype=np.int64)))
    node('Concat', ['nms/sel_c1', 'nms/pad_labels'], ['nms/labels_padded'],
         axis=0)
    node('Gather', ['nms/labels_padded', 'nms/top_i'], ['nms/picked_labels'],
         axis=0)
    minus1_i = const('nms/minus1_i', np.array(-1, dtype=np.int64))
    node('Where', ['nms/valid', 'nms/picked_labels', minus1_i], ['det_labels'])

    batch = _dim0(graph, scores)
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info('num_dets', TensorProto.INT64, [batch]),
        helper.make_tensor_value_info('det_boxes', TensorProto.FLOAT,
                                      [batch, M, 4]),
        helper.make_tensor_value_info('det_scores', TensorProto.FLOAT,
                                      [batch, M]),
        helper.make_tensor_value_info('det_labels', TensorProto.INT64,
                                      [batch, M])])
    return model


def _dim0(graph: Any, name: str) -> int | str:
    for info in list(graph.output) + list(graph.value_info):
        if info.name == name:
            dim = info.type.tensor_type.shape.dim[0]
            return dim.dim_value if dim.HasField('dim_value') else (
                dim.dim_param or 'batch')
    return 'batch'


def name_dynamic_axes(model: Any) -> None:
    """Readable names for the free axes of the graph's input and outputs
    (the dynamo exporter writes ``32*height_blocks``, ``21*s75*s95``):
    ``batch``, ``height``, ``width``, ``num_priors``."""
    def rename(info: Any, names: dict[int, str]) -> None:
        for index, dim in enumerate(info.type.tensor_type.shape.dim):
            if index in names and not dim.HasField('dim_value'):
                dim.dim_param = names[index]

    init = {i.name for i in model.graph.initializer}
    for info in model.graph.input:
        if info.name not in init:
            rename(info, {0: 'batch', 2: 'height', 3: 'width'})
    for info in model.graph.output:
        rename(info, {0: 'batch', 1: 'num_priors'})


def set_metadata(model: Any, values: dict[str, str]) -> None:
    """Set ``metadata_props`` entries (replacing same keys)."""
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def simplify(model: Any) -> tuple[Any, dict]:
    """Run onnxslim (constant folding, dead code, fusions) if installed,
    then :func:`reorder_gelu`. Returns the model and a record ``{'tool',
    'version', 'error', 'gelu_reordered'}``."""
    try:
        import onnxslim
    except ImportError:
        return model, dict(tool=None, error='onnxslim not installed '
                           "(pip install 'perception-toolkit[deploy]')",
                           gelu_reordered=reorder_gelu(model))
    try:
        slim = onnxslim.slim(model)
    except Exception as exc:  # keep the unsimplified graph, say why
        return model, dict(tool='onnxslim', version=onnxslim.__version__,
                           error=f'{type(exc).__name__}: '
                           f'{str(exc).splitlines()[0] if str(exc) else ""}',
                           gelu_reordered=reorder_gelu(model))
    return slim, dict(tool='onnxslim', version=onnxslim.__version__,
                      error=None, gelu_reordered=reorder_gelu(slim))


def save_model(model: Any, path: str) -> bool:
    """Save ``model`` to ``path``, self-contained unless it exceeds
    protobuf's 2 GB (then ``<path>.data`` beside it). Returns whether
    external data was used."""
    import onnx
    external = model.ByteSize() > EXTERNAL_DATA_LIMIT
    if external:
        onnx.save_model(model, path, save_as_external_data=True,
                        all_tensors_to_one_file=True,
                        location=os.path.basename(path) + '.data')
    else:
        onnx.save_model(model, path)
    return external


def reorder_gelu(model: Any) -> int:
    """Rewrite the erf GELU that torch's exporter writes,
    ``x * (0.5 * (1 + erf(x / sqrt2)))``, as ``(x * (1 + erf(x / sqrt2)))
    * 0.5``: the same ops and values (one rounding moved), in the order
    ONNX Runtime's GeluFusion recognises, so it runs as one kernel instead
    of five elementwise passes; TensorRT's parser takes either. Returns
    how many GELUs were rewritten (edited in place)."""
    from onnx import numpy_helper

    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1

    def scalar(name: str, value: float) -> bool:
        array = consts.get(name)
        return (array is not None and array.size == 1
                and abs(float(array.reshape(())) - value) < 1e-4)

    def made_by(name: str, op: str) -> Any:
        node = producer.get(name)
        return node if node is not None and node.op_type == op else None

    count = 0
    for outer in graph.node:
        if outer.op_type != 'Mul' or len(outer.input) != 2:
            continue
        for root, inner_out in (tuple(outer.input), tuple(outer.input)[::-1]):
            inner = made_by(inner_out, 'Mul')
            if inner is None or uses.get(inner_out) != 1:
                continue
            half, add_out = inner.input
            if not scalar(half, 0.5):
                half, add_out = add_out, half
            add = made_by(add_out, 'Add')
            if not scalar(half, 0.5) or add is None or len(add.input) != 2:
                continue
            one, erf_out = add.input
            if not scalar(one, 1.0):
                one, erf_out = erf_out, one
            erf = made_by(erf_out, 'Erf')
            div = erf is not None and made_by(erf.input[0], 'Div')
            if (not scalar(one, 1.0) or not div or div.input[0] != root
                    or not scalar(div.input[1], math.sqrt(2.0))):
                continue
            # inner: x * (1 + erf) ; outer: inner * 0.5
            del inner.input[:]
            inner.input.extend([root, add_out])
            del outer.input[:]
            outer.input.extend([inner_out, half])
            count += 1
            break
    return count
