"""reorder_gelu: the exporter's erf GELU rewritten so that ONNX Runtime
fuses it into one Gelu kernel, with the same outputs."""
import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from perception.deploy.graph import reorder_gelu, simplify

ort = pytest.importorskip('onnxruntime')


def exporter_gelu_graph(extra_use_of_half=False):
    """x -> x * (0.5 * (1 + erf(x / sqrt2))), in the node order torch's
    dynamo exporter writes (tests/deploy: checked against a real export
    below)."""
    def const(name, value):
        return numpy_helper.from_array(np.array(value, np.float32), name)
    nodes = [helper.make_node('Div', ['x', 'sqrt2'], ['d']),
             helper.make_node('Erf', ['d'], ['e']),
             helper.make_node('Add', ['e', 'one'], ['a']),
             helper.make_node('Mul', ['half', 'a'], ['h']),
             helper.make_node('Mul', ['x', 'h'], ['y'])]
    outputs = [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 8])]
    if extra_use_of_half:  # 'h' is also an output: must stay as it is
        outputs.append(helper.make_tensor_value_info('h', TensorProto.FLOAT,
                                                     [2, 8]))
        nodes.append(helper.make_node('Identity', ['h'], ['h2']))
    graph = helper.make_graph(
        nodes, 'gelu', [helper.make_tensor_value_info('x', TensorProto.FLOAT,
                                                      [2, 8])], outputs,
        [const('sqrt2', math.sqrt(2)), const('one', 1.0),
         const('half', 0.5)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])


def run(model, x):
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: x})


def fused_ops(model, tmp_path):
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / 'opt.onnx')
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    ort.InferenceSession(model.SerializeToString(), options,
                         providers=['CPUExecutionProvider'])
    return [n.op_type for n in onnx.load(tmp_path / 'opt.onnx').graph.node]


def test_rewritten_gelu_is_fused_by_onnxruntime_and_keeps_values(tmp_path):
    model = exporter_gelu_graph()
    x = np.linspace(-6, 6, 16, dtype=np.float32).reshape(2, 8)
    before = run(model, x)[0]
    assert 'Gelu' not in fused_ops(model, tmp_path)  # why the rewrite exists
    assert reorder_gelu(model) == 1
    onnx.checker.check_model(model)
    assert fused_ops(model, tmp_path) == ['Gelu']
    after = run(model, x)[0]
    reference = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(after, before, atol=1e-6)
    np.testing.assert_allclose(after, reference, atol=1e-6)
    assert reorder_gelu(model) == 0  # idempotent


def test_a_shared_intermediate_is_left_alone():
    model = exporter_gelu_graph(extra_use_of_half=True)
    x = np.ones((2, 8), np.float32)
    before = run(model, x)
    assert reorder_gelu(model) == 0
    for a, b in zip(before, run(model, x)):
        np.testing.assert_array_equal(a, b)


def test_the_dynamo_exporters_gelu_gets_fused(tmp_path):
    """The pattern matched is the one torch writes today."""
    net = nn.Sequential(nn.Conv2d(3, 8, 1), nn.GELU()).eval()
    x = torch.randn(1, 3, 4, 4)
    program = torch.onnx.export(net, (x,), dynamo=True, opset_version=18,
                                external_data=False, verbose=False)
    model, record = simplify(program.model_proto)
    assert record['gelu_reordered'] == 1
    assert 'Gelu' in fused_ops(model, tmp_path)
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(run(model, x.numpy())[0], expected, atol=1e-5)
