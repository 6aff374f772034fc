"""Build perception/deploy/optables/<target>.json from onnx-tensorrt's
docs/operators.md (the data the TensorRT op lint reads).

The markdown is kept verbatim under ``optables/sources/`` (copied there if
it is elsewhere) and the table names it with its git blob id, so the table
can be rebuilt, and checked against the branch, without a network::

    git -C onnx-tensorrt show 10.1-GA:docs/operators.md \\
        > perception/deploy/optables/sources/10.1-GA.operators.md
    python -m perception.deploy.build_optables \\
        perception/deploy/optables/sources/10.1-GA.operators.md trt10.3 \\
        --branch 10.1-GA --commit SHA --date 2024-06-17 \\
        [--requested release/10.3-GA] [--opset 9 20] [--note TEXT]
    python -m perception.deploy.build_optables --check   # every table
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys

from perception.deploy.oplint import TABLE_DIR, table_from_markdown

__all__ = ['build_table', 'table_text', 'rebuild', 'git_blob_id',
           'EXTRA_RULES', 'REPOSITORY', 'SOURCE_DIR']

REPOSITORY = 'https://github.com/onnx/onnx-tensorrt'
#: verbatim copies of the operators.md files the tables are built from
SOURCE_DIR = os.path.join(TABLE_DIR, 'sources')

#: restrictions TensorRT states outside operators.md, added to every table.
EXTRA_RULES = {
    'TopK': [dict(kind='initializer', input='K',
                  source="TensorRT's ITopKLayer takes K as a build-time "
                  'constant (a data-dependent K does not build)')],
    'NonMaxSuppression': [
        dict(kind='initializer', input=name,
             source='onnx-tensorrt NonMaxSuppression importer (operators.md '
             'of 8.x states it: thresholds must be initializers)')
        for name in ('max_output_boxes_per_class', 'iou_threshold',
                     'score_threshold')],
}


def git_blob_id(data: bytes) -> str:
    """Git's object id of a file with this content (``git rev-parse
    BRANCH:docs/operators.md`` names the same id)."""
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def build_table(markdown: str, branch: str, commit: str, date: str,
                opset: tuple[int, int] | None = None, note: str = '',
                requested: str | None = None) -> dict:
    """The table of one operators.md file (a path under :data:`SOURCE_DIR`).

    Args:
        markdown: the verbatim operators.md.
        branch, commit, date: where it was read (branch, full sha, commit
            date).
        opset: (min, max) when not the file's "opset A to opset B".
        note: how the table relates to its target, in words.
        requested: the branch the target calls for, when it was not the
            one read (it was missing).
    """
    with open(markdown, 'rb') as f:
        data = f.read()
    source = dict(
        repository=REPOSITORY, branch=branch, commit=commit, date=date,
        url=f'{REPOSITORY}/blob/{commit}/docs/operators.md',
        file=os.path.relpath(markdown, TABLE_DIR).replace(os.sep, '/'),
        blob=git_blob_id(data), opset_from='--opset' if opset
        else 'operators.md', note=note)
    if requested and requested != branch:
        source['requested'] = requested
    table = table_from_markdown(data.decode('utf-8'), source,
                                tuple(opset) if opset else None)
    table['extra_rules'] = EXTRA_RULES
    return table


def table_text(table: dict) -> str:
    """The JSON text stored for ``table``."""
    return json.dumps(table, indent=1, sort_keys=True) + '\n'


def rebuild(target: str) -> tuple[dict, str]:
    """(table rebuilt from the source its stored JSON names, stored text)
    for a target name (``trt10.3``) or a table's path."""
    path = target if target.endswith('.json') else os.path.join(
        TABLE_DIR, f'{target}.json')
    with open(path, encoding='utf-8') as f:
        stored_text = f.read()
    stored = json.loads(stored_text)
    source = stored['source']
    for key in ('file', 'blob', 'branch', 'commit', 'date'):
        if not source.get(key):
            raise ValueError(f"{path}: source.{key} is missing; rebuild the "
                             'table with python -m '
                             'perception.deploy.build_optables')
    markdown = os.path.join(TABLE_DIR, source['file'])
    if not os.path.isfile(markdown):
        raise ValueError(f"{path}: source.file '{source['file']}' is not in "
                         f'{TABLE_DIR}; store the verbatim operators.md of '
                         f"{source['branch']} there")
    opset = (stored['opset']['min'], stored['opset']['max']) \
        if source.get('opset_from') == '--opset' else None
    table = build_table(markdown, source['branch'], source['commit'],
                        source['date'], opset, source.get('note', ''),
                        source.get('requested'))
    return table, stored_text


def _check() -> int:
    status = 0
    for name in sorted(os.listdir(TABLE_DIR)):
        if not name.endswith('.json'):
            continue
        target = name[:-5]
        table, stored = rebuild(target)
        same = table_text(table) == stored
        status |= not same
        print(f"{target}: {table['source']['branch']}@"
              f"{table['source']['commit'][:12]} "
              f"{'reproduced' if same else 'DIFFERS from its source'}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('markdown', nargs='?',
                        help="onnx-tensorrt's docs/operators.md")
    parser.add_argument('target', nargs='?', help='table name, e.g. trt10.3')
    parser.add_argument('--branch')
    parser.add_argument('--commit', help='full commit sha')
    parser.add_argument('--date', help='commit date')
    parser.add_argument('--requested', help='the branch the target calls '
                        'for, when --branch is a stand-in for it')
    parser.add_argument('--opset', nargs=2, type=int, metavar=('MIN', 'MAX'))
    parser.add_argument('--note', default='')
    parser.add_argument('--check', action='store_true', help='rebuild every '
                        'stored table from its stored source and compare')
    args = parser.parse_args(argv)
    if args.check:
        return _check()
    missing = [name for name in ('markdown', 'target', 'branch', 'commit',
                                 'date') if not getattr(args, name)]
    if missing:
        parser.error(f"missing {', '.join(missing)} (or use --check)")
    markdown = os.path.abspath(args.markdown)
    if os.path.dirname(markdown) != os.path.abspath(SOURCE_DIR):
        os.makedirs(SOURCE_DIR, exist_ok=True)
        copy = os.path.join(SOURCE_DIR, args.branch.replace('/', '_') +
                            '.operators.md')
        shutil.copyfile(markdown, copy)
        markdown = copy
    table = build_table(markdown, args.branch, args.commit, args.date,
                        tuple(args.opset) if args.opset else None, args.note,
                        args.requested)
    path = os.path.join(TABLE_DIR, f'{args.target}.json')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(table_text(table))
    print(f"wrote {path}: {len(table['operators'])} operators, opset "
          f"{table['opset']['min']}..{table['opset']['max']}, from "
          f"{table['source']['file']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
