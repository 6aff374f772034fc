"""Build perception/deploy/optables/<target>.json from onnx-tensorrt's
docs/operators.md (the data the TensorRT op lint reads).

    git -C onnx-tensorrt show release/10.3-GA:docs/operators.md > ops.md
    python -m perception.deploy.build_optables ops.md trt10.3 --branch release/10.3-GA \
        --commit SHA --date 2024-08-01 [--opset 9 20] [--note TEXT]
"""
import argparse
import json
import os
import sys

from perception.deploy.oplint import TABLE_DIR, table_from_markdown

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('markdown', help="onnx-tensorrt's docs/operators.md")
    parser.add_argument('target', help='table name, e.g. trt10.3')
    parser.add_argument('--branch', required=True)
    parser.add_argument('--commit', required=True)
    parser.add_argument('--date', required=True, help='commit date')
    parser.add_argument('--opset', nargs=2, type=int, metavar=('MIN', 'MAX'))
    parser.add_argument('--note', default='')
    args = parser.parse_args(argv)
    with open(args.markdown, encoding='utf-8') as f:
        text = f.read()
    source = dict(
        url=f'https://github.com/onnx/onnx-tensorrt/blob/{args.commit}/'
        'docs/operators.md',
        repository='https://github.com/onnx/onnx-tensorrt',
        branch=args.branch, commit=args.commit, date=args.date,
        note=args.note)
    table = table_from_markdown(text, source, tuple(args.opset) if args.opset
                                else None)
    table['extra_rules'] = EXTRA_RULES
    path = os.path.join(TABLE_DIR, f'{args.target}.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write('\n')
    print(f"wrote {path}: {len(table['operators'])} operators, opset "
          f"{table['opset']['min']}..{table['opset']['max']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
