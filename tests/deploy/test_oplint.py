"""The static TensorRT op lint on small hand-built graphs: an op the parser
does not take, violated restrictions and a custom-domain op are each named
with their node; a clean graph passes; the tables name their source."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from perception.deploy.oplint import OpLintError, lint_model, load_table, table_from_markdown


def _model(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(nodes, 'g', inputs, outputs,
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', opset)])


def _float(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _int(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.INT64, shape)


def _problems(report):
    return {(e['node'], e['op']): e['problem'] for e in report['errors']}


def test_a_clean_graph_passes():
    axes = numpy_helper.from_array(np.array([0], np.int64), 'axes')
    model = _model([helper.make_node('Relu', ['x'], ['r'], name='relu'),
                    helper.make_node('Unsqueeze', ['r', 'axes'], ['y'],
                                     name='unsq')],
                   [_float('x', [2, 3])], [_float('y', [1, 2, 3])], [axes])
    report = lint_model(model, 'trt10.3')
    assert report['passed'] and report['errors'] == []
    assert report['op_counts'] == {'Relu': 1, 'Unsqueeze': 1}


def test_an_unsupported_op_is_named_with_its_node():
    model = _model([helper.make_node('Unique', ['x'], ['y'],
                                     name='dedupe_ids')],
                   [_float('x', [5])], [_float('y', [None])])
    assert load_table('trt10.3')['operators']['Unique']['supported'] is False
    report = lint_model(model, 'trt10.3')
    assert not report['passed']
    assert 'not supported by trt10.3' in _problems(report)[('dedupe_ids',
                                                            'Unique')]
    assert 'dedupe_ids (Unique)' in report['summary']


def test_violated_restrictions_are_named_with_their_nodes():
    nodes = [
        # Squeeze axes from a graph input, not an initializer
        helper.make_node('Squeeze', ['x', 'axes_in'], ['s'], name='squeeze_dyn'),
        # cubic resize: TensorRT takes nearest / linear
        helper.make_node('Resize', ['x', '', 'scales'], ['r'], mode='cubic',
                         name='upsample_cubic'),
        # K computed at run time: TensorRT's TopK needs a constant K
        helper.make_node('TopK', ['v', 'k_in'], ['tv', 'ti'], name='topk_dyn'),
        # a zero point that is not 0
        helper.make_node('DequantizeLinear', ['q', 'scale', 'zp'], ['dq'],
                         name='dq_zp'),
        helper.make_node('MaxPool', ['x'], ['p'], kernel_shape=[2, 2],
                         dilations=[2, 2], name='pool_dilated'),
    ]
    inits = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32),
                                     'scales'),
             numpy_helper.from_array(np.array(0.1, np.float32), 'scale'),
             numpy_helper.from_array(np.array(3, np.int8), 'zp')]
    model = _model(nodes, [_float('x', [1, 1, 4, 4]), _int('axes_in', [1]),
                           _float('v', [1, 10]), _int('k_in', [1]),
                           helper.make_tensor_value_info(
                               'q', TensorProto.INT8, [4])],
                   [_float('s', None), _float('r', None), _float('tv', None),
                    _int('ti', None), _float('dq', None), _float('p', None)],
                   inits)
    problems = _problems(lint_model(model, 'trt10.3'))
    assert 'input `axes`' in problems[('squeeze_dyn', 'Squeeze')]
    assert "`mode`" in problems[('upsample_cubic', 'Resize')] and \
        "'cubic'" in problems[('upsample_cubic', 'Resize')]
    assert 'input `K`' in problems[('topk_dyn', 'TopK')]
    assert 'must be 0, got 3' in problems[('dq_zp', 'DequantizeLinear')]
    assert 'dilations' in problems[('pool_dilated', 'MaxPool')]
    assert len(problems) == 5


def test_custom_domain_ops_and_the_opset_range():
    node = helper.make_node('EfficientNMS_TRT', ['x'], ['y'], domain='trt',
                            name='plugin_nms')
    graph = helper.make_graph([node], 'g', [_float('x', [1])],
                              [_float('y', [1])])
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 21), helper.make_opsetid('trt', 1)])
    problems = _problems(lint_model(model, 'trt10.3'))
    assert 'TensorRT plugin' in problems[('plugin_nms', 'trt::EfficientNMS_TRT')]
    assert 'outside trt10.3 range 9..20' in problems[('<model>', 'opset')]
    # TensorRT 11 parses opset 21; the plugin op stays a problem
    problems = _problems(lint_model(model, 'trt11'))
    assert ('<model>', 'opset') not in problems and len(problems) == 1


def test_tables_name_their_source_and_unknown_targets_are_refused():
    for target, high in (('trt10.3', 20), ('trt11', 25)):
        table = load_table(target)
        assert table['source']['url'].startswith(
            'https://github.com/onnx/onnx-tensorrt/blob/')
        assert table['source']['branch'] and table['source']['date']
        assert table['opset'] == dict(min=9, max=high)
    with pytest.raises(OpLintError, match="target 'trt7'.*trt10.3, trt11"):
        load_table('trt7')


def test_table_from_markdown_reads_rows_and_restrictions():
    text = '''TensorRT 10.0 supports operators in the inclusive range of opset 9 to opset 20.
| Operator | Supported | Supported Types | Restrictions |
|---|---|---|---|
| Slice | Y | FP32, INT64 | `axes` must be an initializer |
| Mod | N |
| TopK | Y | FP32 | `sorted` must be 1. `K` input must be less than 3840.
'''
    table = table_from_markdown(text, dict(url='u', branch='b'))
    ops = table['operators']
    assert table['opset'] == dict(min=9, max=20)
    assert ops['Mod']['supported'] is False
    assert ops['Slice']['rules'] == [dict(kind='initializer', input='axes')]
    assert dict(kind='attr_equals', attr='sorted', value=1) in ops['TopK'][
        'rules']
    assert dict(kind='input_below', input='K', value=3840) in ops['TopK'][
        'rules']
