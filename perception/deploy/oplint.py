"""Static TensorRT op lint: every node of an ONNX graph against the
onnx-tensorrt operator table of a target (``optables/<target>.json``, data
built from onnx-tensorrt's ``docs/operators.md`` by
``python -m perception.deploy.build_optables``; each file names its source URL, branch, commit
and date).

It reports, naming the node: operators the parser does not take (or of a
custom domain), an opset outside the target's range, and violated
restrictions the table states in a checkable form (an input that must be an
initializer, a zero point that must be 0, attribute values). Restrictions it
cannot check statically are listed once per op as notes. Tensor types the
table does not list for an op are warnings (shape inference decides them).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from perception.errors import UserError

__all__ = ['load_table', 'lint_model', 'table_from_markdown', 'TABLE_DIR',
           'OpLintError']

TABLE_DIR = os.path.join(os.path.dirname(__file__), 'optables')


class OpLintError(UserError, ValueError):
    """No table for the target, or a model the lint cannot read."""


# -- tables ---------------------------------------------------------------

_TYPE_NAMES = {1: 'FP32', 10: 'FP16', 16: 'BF16', 6: 'INT32', 7: 'INT64',
               3: 'INT8', 2: 'UINT8', 9: 'BOOL', 11: 'DOUBLE', 22: 'INT4',
               17: 'FP8', 18: 'FP8', 19: 'FP8', 20: 'FP8'}


#: ops whose first input is a shape, not the data the types refer to.
_OUTPUT_TYPED = ('ConstantOfShape', 'EyeLike', 'RandomNormalLike',
                 'RandomUniformLike')


def _rules(op: str, text: str) -> list[dict]:
    """Checkable rules from a table's restriction text."""
    rules: list[dict] = []
    for name in re.findall(r'`(\w+)`(?: input)? must be (?:an initializer|a '
                           r'constant tensor|a build-time constant)', text):
        rules.append(dict(kind='initializer', input=name))
    for name in re.findall(r'`(\w+)` must be (?:zero|0)\b', text):
        rules.append(dict(kind='zero', input=name))
    for name in re.findall(r'`(\w+)` must be empty or all ones', text):
        rules.append(dict(kind='all_ones', attr=name))
    for name, value in re.findall(r'`(\w+)`(?: attribute)? must be (\d+)\b',
                                  text):
        if value != '0' or name not in {r.get('input') for r in rules}:
            rules.append(dict(kind='attr_equals', attr=name, value=int(value)))
    for name, value in re.findall(r'`(\w+)` attribute must be (\d+)', text):
        rules.append(dict(kind='attr_equals', attr=name, value=int(value)))
    for name, bound in re.findall(r'`(\w+)` input must be less than (\d+)',
                                  text):
        rules.append(dict(kind='input_below', input=name, value=int(bound)))
    if re.search(r'`reduction` is not supported', text):
        rules.append(dict(kind='attr_equals', attr='reduction', value='none'))
    if op == 'Resize':
        for attr, label in (('coordinate_transformation_mode',
                             'resize transformation modes'),
                            ('mode', 'resize modes'),
                            ('nearest_mode', 'nearest modes')):
            found = re.search(rf'Supported {label}: ([^.<]*)', text)
            if found:
                rules.append(dict(kind='attr_in', attr=attr, values=re.findall(
                    r'`(\w+)`', found.group(1))))
        if 'Antialiasing is not supported' in text:
            rules.append(dict(kind='attr_equals', attr='antialias', value=0))
    unique = []
    for rule in rules:
        if rule not in unique:
            unique.append(rule)
    return unique


def table_from_markdown(text: str, source: dict,
                        opset: tuple[int, int] | None = None) -> dict:
    """An operator table (JSON-able) from onnx-tensorrt's operators.md.

    Args:
        text: the markdown.
        source: ``url``, ``branch``, ``commit``, ``date`` of that file.
        opset: (min, max) opset; default from the text's "opset A to opset B".
    """
    if opset is None:
        found = re.search(r'opset (\d+) to opset (\d+)', text)
        opset = (int(found[1]), int(found[2])) if found else (9, 20)
    operators: dict = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) < 2 or not re.fullmatch(r'[A-Z]\w*', cells[0]) or \
                cells[0] == 'Operator':
            continue
        op, supported = cells[0], cells[1].upper().startswith('Y')
        # 'INF64' is a typo of INT64 in some tables (ConstantOfShape)
        types = [t.strip().replace('INF64', 'INT64')
                 for t in cells[2].split(',') if t.strip()] \
            if len(cells) > 2 else []
        restriction = cells[3].replace('<br />', ' ') if len(cells) > 3 else ''
        operators[op] = dict(supported=supported, types=types,
                             restrictions=restriction,
                             rules=_rules(op, restriction))
    return dict(source=source, opset=dict(min=opset[0], max=opset[1]),
                operators=operators)


def load_table(target: str) -> dict:
    """The operator table of ``target`` (``trt10.3``, ``trt11``)."""
    path = os.path.join(TABLE_DIR, f'{target}.json')
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(TABLE_DIR)
                       if f.endswith('.json'))
        raise OpLintError(f'no TensorRT operator table for target '
                          f'{target!r}; known: {", ".join(known)}')
    with open(path, encoding='utf-8') as f:
        table = json.load(f)
    table.setdefault('extra_rules', {})
    return table


# -- lint -----------------------------------------------------------------

def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == 'Constant' and node.attribute:
            attr = node.attribute[0]
            if attr.name == 'value':
                values[node.output[0]] = numpy_helper.to_array(attr.t)
            elif attr.name in ('value_int', 'value_ints'):
                values[node.output[0]] = np.array(
                    attr.i if attr.name == 'value_int' else list(attr.ints))
    return values


def _attr(node: Any, name: str, schema: Any) -> Any:
    from onnx import helper
    for attr in node.attribute:
        if attr.name == name:
            value = helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    if schema is not None and name in schema.attributes:
        default = schema.attributes[name].default_value
        if default.type:
            value = helper.get_attribute_value(default)
            return value.decode() if isinstance(value, bytes) else value
    return None


def _input_index(schema: Any, name: str) -> int | None:
    if schema is None:
        return None
    for index, formal in enumerate(schema.inputs):
        if formal.name == name:
            return index
    return None


def _check_rule(rule: dict, node: Any, schema: Any,
                constants: dict) -> str | None:
    """The violated restriction in words, or None."""
    kind = rule['kind']
    if kind in ('initializer', 'zero', 'input_below'):
        index = _input_index(schema, rule['input'])
        if index is None:  # an attribute of that name (older opsets)
            return None
        if index >= len(node.input) or not node.input[index]:
            return None
        value = constants.get(node.input[index])
        if kind == 'initializer':
            return None if value is not None else (
                f"input `{rule['input']}` ('{node.input[index]}') must be an "
                'initializer or constant')
        if value is None:
            return (f"input `{rule['input']}` must be a constant to check "
                    f"it ({'0' if kind == 'zero' else '<' + str(rule['value'])})")
        if kind == 'zero' and np.any(value != 0):
            return f"input `{rule['input']}` must be 0, got {value.tolist()}"
        if kind == 'input_below' and np.any(value >= rule['value']):
            return (f"input `{rule['input']}` must be below {rule['value']}, "
                    f'got {value.tolist()}')
        return None
    value = _attr(node, rule['attr'], schema)
    if kind == 'all_ones':
        return None if not value or all(v == 1 for v in value) else (
            f"attribute `{rule['attr']}` must be empty or all ones, got "
            f'{list(value)}')
    if kind == 'attr_equals':
        return None if value is None or value == rule['value'] else (
            f"attribute `{rule['attr']}` must be {rule['value']!r}, got "
            f'{value!r}')
    if kind == 'attr_in':
        return None if value is None or value in rule['values'] else (
            f"attribute `{rule['attr']}` must be one of {rule['values']}, got "
            f'{value!r}')
    return None


def _types(model: Any) -> dict[str, str]:
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - types are only warnings
        inferred = model
    graph = inferred.graph
    types = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        types[info.name] = _TYPE_NAMES.get(info.type.tensor_type.elem_type, '?')
    for init in graph.initializer:
        types[init.name] = _TYPE_NAMES.get(init.data_type, '?')
    return types


def lint_model(model: Any, target: str) -> dict:
    """Lint ``model`` (a path or ModelProto) for ``target``; returns the
    report (``passed``, ``errors``, ``warnings``, ``notes``, ``summary``)."""
    import onnx
    from onnx import defs
    if isinstance(model, (str, os.PathLike)):
        try:
            model = onnx.load(os.fspath(model), load_external_data=False)
        except Exception as exc:
            raise OpLintError(f"'{model}' is not a readable ONNX model "
                              f'({exc})') from None
    table = load_table(target)
    operators = table['operators']
    opset = next((o.version for o in model.opset_import
                  if o.domain in ('', 'ai.onnx')), 0)
    errors, warnings, notes = [], [], {}
    low, high = table['opset']['min'], table['opset']['max']
    if not low <= opset <= high:
        errors.append(dict(node='<model>', op='opset', problem=(
            f'opset {opset} is outside {target} range {low}..{high}')))
    constants = _constants(model.graph)
    types = _types(model)
    counts: dict[str, int] = {}
    for node in model.graph.node:
        name = node.name or f'<unnamed {node.op_type}>'
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
        if node.domain not in ('', 'ai.onnx'):
            errors.append(dict(node=name, op=f'{node.domain}::{node.op_type}',
                               problem=f'custom-domain op {node.domain!r} '
                               'needs a TensorRT plugin'))
            continue
        entry = operators.get(node.op_type)
        if entry is None or not entry['supported']:
            errors.append(dict(node=name, op=node.op_type, problem=(
                f'{node.op_type} is not supported by {target}'
                if entry else f'{node.op_type} is not in the {target} table')))
            continue
        try:
            schema = defs.get_schema(node.op_type, opset)
        except Exception:  # noqa: BLE001 - unknown to this onnx version
            schema = None
        rules = list(entry['rules']) + table['extra_rules'].get(
            node.op_type, [])
        for rule in rules:
            problem = _check_rule(rule, node, schema, constants)
            if problem:
                errors.append(dict(node=name, op=node.op_type,
                                   problem=problem, restriction=entry[
                                       'restrictions'] or rule.get('source')))
        if entry['restrictions'] and not rules:
            notes.setdefault(node.op_type, entry['restrictions'])
        wanted = set(entry['types'])
        # the listed types are those of the data: a shape-making op's input
        # is a shape, so its output is checked
        tensor = node.output[0] if node.op_type in _OUTPUT_TYPED else (
            node.input[0] if node.input else '')
        dtype = types.get(tensor)
        if wanted and dtype and dtype != '?' and dtype not in wanted and \
                node.op_type not in ('Shape', 'Size', 'Cast', 'CastLike'):
            warnings.append(dict(node=name, op=node.op_type, problem=(
                f'input type {dtype} not in {target} types '
                f'{sorted(wanted)}')))
    passed = not errors
    head = '; '.join(f"{e['node']} ({e['op']}): {e['problem']}"
                     for e in errors[:3])
    more = f' and {len(errors) - 3} more' if len(errors) > 3 else ''
    summary = (f'op lint for {target} passed ({sum(counts.values())} nodes, '
               f'{len(warnings)} type warnings)' if passed else
               f'op lint for {target} found {len(errors)} problem(s): '
               f'{head}{more} (see oplint.json)')
    return dict(passed=passed, target=target, opset=opset,
                table=table['source'], errors=errors, warnings=warnings,
                notes=notes, op_counts=counts, summary=summary)
