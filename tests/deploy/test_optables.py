"""The op-lint tables as data: each names the onnx-tensorrt branch and
commit it was read from and a verbatim copy of that operators.md (its git
blob id checked), build_optables reproduces the stored JSON from that copy,
the restrictions the issue names are parsed from the real file, and the
lint applies them for both targets."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from perception.deploy.build_optables import (
    REPOSITORY,
    git_blob_id,
    main,
    rebuild,
    table_text,
)
from perception.deploy.oplint import TABLE_DIR, lint_model, load_table

TARGETS = ('trt10.3', 'trt11')


def _source_text(table: dict) -> str:
    with open(os.path.join(TABLE_DIR, table['source']['file']),
              encoding='utf-8') as f:
        return f.read()


@pytest.mark.parametrize('target', TARGETS)
def test_tables_name_branch_commit_and_a_verbatim_source(target):
    source = load_table(target)['source']
    assert source['repository'] == REPOSITORY
    assert re.fullmatch(r'[0-9a-f]{40}', source['commit'])
    assert source['url'] == (f"{REPOSITORY}/blob/{source['commit']}/"
                             'docs/operators.md')
    assert source['branch'] and re.fullmatch(r'\d{4}-\d\d-\d\d',
                                              source['date'])
    path = os.path.join(TABLE_DIR, source['file'])
    with open(path, 'rb') as f:
        data = f.read()
    # git rev-parse BRANCH:docs/operators.md gives this id: the copy is
    # the branch's file, byte for byte
    assert git_blob_id(data) == source['blob']
    assert data.startswith(b'<!--- SPDX-License-Identifier: Apache-2.0 -->')
    # a stand-in branch says which one it stands in for, and that in words
    if source.get('requested'):
        assert source['requested'].split()[0] in source['note']
        assert 'not in' in source['note'] or 'No ' in source['note']


def test_git_blob_id_is_gits():
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_id(b'hello\n') == \
        'ce013625030ba8dba906f756967f9e9ca394464a'


@pytest.mark.parametrize('target', TARGETS)
def test_build_optables_reproduces_the_stored_json(target):
    table, stored = rebuild(target)
    assert table_text(table) == stored
    header = re.search(r'opset (\d+) to opset (\d+)', _source_text(table))
    read = dict(min=int(header[1]), max=int(header[2]))
    if table['source']['opset_from'] == 'operators.md':
        assert table['opset'] == read
    else:  # given on the command line, and the table says so
        assert table['opset'] != read and '--opset' in table['source']['note']


def test_check_mode_and_a_table_without_its_source(tmp_path, capsys):
    assert main(['--check']) == 0
    assert capsys.readouterr().out.count('reproduced') == len(TARGETS)
    broken = json.loads(table_text(load_table('trt10.3')))
    del broken['source']['commit']
    path = tmp_path / 'trt10.3.json'
    path.write_text(table_text(broken))
    with pytest.raises(ValueError, match=r'trt10\.3\.json: source\.commit is '
                       'missing; rebuild'):
        rebuild(str(path))


def _row(text: str, op: str) -> str:
    return next(line for line in text.splitlines()
                if line.startswith(f'| {op} '))


@pytest.mark.parametrize('target', TARGETS)
def test_the_issues_restrictions_are_parsed_from_the_real_table(target):
    table = load_table(target)
    text, ops = _source_text(table), table['operators']
    for op in ('Slice', 'Squeeze'):
        assert '`axes` must be an initializer' in _row(text, op)
        assert ops[op]['rules'] == [dict(kind='initializer', input='axes')]
    assert '`y_zero_point` must be 0' in _row(text, 'QuantizeLinear')
    assert ops['QuantizeLinear']['rules'] == [dict(kind='zero',
                                                   input='y_zero_point')]
    assert '`x_zero_point` must be zero' in _row(text, 'DequantizeLinear')
    assert ops['DequantizeLinear']['rules'] == [dict(kind='zero',
                                                     input='x_zero_point')]
    rules = {r['attr']: r for r in ops['Resize']['rules']}
    assert rules['mode']['values'] == ['nearest', 'linear']
    assert rules['coordinate_transformation_mode']['values'] == [
        'half_pixel', 'pytorch_half_pixel', 'tf_half_pixel_for_nn',
        'asymmetric', 'align_corners']
    assert rules['nearest_mode']['values'] == [
        'floor', 'ceil', 'round_prefer_floor', 'round_prefer_ceil']
    assert rules['antialias'] == dict(kind='attr_equals', attr='antialias',
                                      value=0)
    for mode in rules['mode']['values']:
        assert f'`{mode}`' in _row(text, 'Resize')


def _float(name, shape=None):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


@pytest.mark.parametrize('target', TARGETS)
def test_the_lint_applies_them_for_each_target(target):
    nodes = [
        helper.make_node('Slice', ['x', 'starts', 'ends', 'axes_in'], ['s'],
                         name='slice_dyn_axes'),
        helper.make_node('Slice', ['x', 'starts', 'ends', 'axes'], ['s2'],
                         name='slice_ok'),
        helper.make_node('QuantizeLinear', ['x', 'scale', 'zp'], ['q'],
                         name='q_zp'),
        helper.make_node('Resize', ['x', '', 'scales'], ['r'],
                         mode='linear', name='resize_ok'),
        helper.make_node('Resize', ['x', '', 'scales'], ['r2'],
                         mode='nearest', nearest_mode='floor',
                         coordinate_transformation_mode='tf_crop_and_resize',
                         name='resize_crop'),
    ]
    inits = [numpy_helper.from_array(np.array(v, dtype), name)
             for name, v, dtype in (
                 ('starts', [0], np.int64), ('ends', [2], np.int64),
                 ('axes', [1], np.int64), ('scale', 0.5, np.float32),
                 ('zp', 2, np.uint8), ('scales', [1, 1, 2, 2], np.float32))]
    graph = helper.make_graph(
        nodes, 'g', [_float('x', [1, 1, 4, 4]),
                     helper.make_tensor_value_info('axes_in',
                                                   TensorProto.INT64, [1])],
        [_float(n) for n in ('s', 's2', 'r', 'r2')] + [
            helper.make_tensor_value_info('q', TensorProto.UINT8, None)],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 18)])
    report = lint_model(model, target)
    problems = {e['node']: e['problem'] for e in report['errors']}
    assert set(problems) == {'slice_dyn_axes', 'q_zp', 'resize_crop'}
    assert "input `axes` ('axes_in') must be an initializer" in \
        problems['slice_dyn_axes']
    assert 'must be 0, got 2' in problems['q_zp']
    assert "'tf_crop_and_resize'" in problems['resize_crop']
    assert report['table']['commit'] == load_table(target)['source']['commit']
