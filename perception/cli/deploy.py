"""``perception deploy doctor|build|check``: TensorRT on the device, plus the
precision and engine flags that ``perception export`` takes. Imports no
torch (nor tensorrt) at module level."""
from __future__ import annotations

import argparse
import json

from perception.cli.base import Command
from perception.registry import COMMANDS

__all__ = ['DeployCommand', 'add_precision_arguments', 'add_tensorrt_arguments',
           'precision_options', 'build_options', 'build_engine_after_export']


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fp16`` / ``--int8`` and the gate's flags (perception export)."""
    group = parser.add_argument_group(
        'precision (explicit in the ONNX, gated against FP32 in ONNX Runtime)')
    mode = group.add_mutually_exclusive_group()
    mode.add_argument('--fp16', action='store_true', help='mixed FP16 ONNX '
                      '(LayerNorm, Softmax, exp ops and box decoding stay FP32)')
    mode.add_argument('--int8', action='store_true', help='Q/DQ INT8 ONNX '
                      '(symmetric, per-channel weights), calibrated on '
                      '--calib-data')
    group.add_argument('--calib-data', metavar='PATH', help="'val', 'test' "
                       "or 'train' (that split of the config) or a folder of "
                       'images')
    group.add_argument('--calib-images', type=int, default=64, metavar='N',
                       help='calibration images (default 64)')
    group.add_argument('--calib-method', default='minmax',
                       choices=['minmax', 'percentile', 'entropy'],
                       help='activation range calibration (default minmax)')
    group.add_argument('--max-drop', type=float, help="largest drop of the "
                       "gate's figure against FP32, from the config's "
                       'evaluator: COCO AP points for detection (default 1.0 '
                       'fp16, 2.0 int8), FROC sensitivity at 2 FPs per scan '
                       'for lesion detectors (default 0.02, absolute)')
    group.add_argument('--int8-keep-head', nargs='?', const='fp32',
                       choices=['fp32', 'fp16'], help='leave the detection '
                       'head unquantized, in FP32 (default) or FP16, when '
                       'INT8 collapses it')
    group.add_argument('--gate-split', choices=['val', 'test', 'train'],
                       help="the config's split the gate evaluates on "
                       '(default test, else val; calibration images held out)')
    group.add_argument('--gate-images', type=int, default=0, metavar='M',
                       help='evaluate on at most M images (default all)')


def add_tensorrt_arguments(parser: argparse.ArgumentParser) -> None:
    """Engine build flags (perception export --format tensorrt, deploy
    build/check)."""
    group = parser.add_argument_group('TensorRT engine')
    group.add_argument('--max-batch', type=int, default=8,
                       help='largest batch of a dynamic-batch profile')
    group.add_argument('--workspace-mb', type=int, help='workspace limit '
                       '(default: 1/8 of the shared memory on a Jetson, '
                       '256..2048 MiB; 4096 elsewhere)')
    group.add_argument('--dla-core', type=int, help='build for this DLA core '
                       '(GPU fallback on)')
    group.add_argument('--flag-precision', choices=['fp16'],
                       help='TensorRT 10.x only: FP16 builder flag on an FP32 '
                       'ONNX (weakly typed; prefer export --fp16)')
    group.add_argument('--timing-cache-dir', metavar='DIR',
                       help='timing caches (default ~/.cache/perception/'
                       'tensorrt)')
    group.add_argument('--print-trtexec', action='store_true',
                       help='print the equivalent trtexec command')


def precision_options(args: argparse.Namespace) -> dict:
    """ExportOptions fields from the precision flags."""
    precision = 'fp16' if args.fp16 else 'int8' if args.int8 else 'fp32'
    from perception.errors import UserError
    if precision == 'int8' and not args.calib_data:
        raise UserError('--int8 needs --calib-data: a split of the config '
                        "('train', 'val', 'test') or a folder of images, and "
                        '--calib-images N')
    if precision != 'int8' and (args.int8_keep_head or args.calib_data):
        raise UserError('--calib-data / --int8-keep-head go with --int8')
    if args.calib_images < 1:
        raise UserError(f'--calib-images {args.calib_images}: give at least 1')
    return dict(precision=precision, calib_data=args.calib_data,
                calib_images=args.calib_images, calib_method=args.calib_method,
                max_drop=args.max_drop, int8_keep_head=args.int8_keep_head,
                gate_split=args.gate_split, gate_images=args.gate_images)


def build_options(args: argparse.Namespace):
    from perception.deploy.tensorrt.builder import BuildOptions
    return BuildOptions(max_batch=args.max_batch, workspace_mb=args.workspace_mb,
                        dla_core=args.dla_core,
                        flag_precision=args.flag_precision,
                        timing_cache_dir=args.timing_cache_dir)


def build_engine_after_export(args: argparse.Namespace, bundle_dir: str) -> int:
    """``--print-trtexec`` and ``--format tensorrt`` after an export."""
    from perception.deploy.tensorrt.builder import build_engine, trtexec_command
    options = build_options(args)
    if args.print_trtexec:
        print(trtexec_command(bundle_dir, options))
    if args.format == 'tensorrt':
        from perception.deploy.tensorrt import TensorRTMissing
        try:
            record = build_engine(bundle_dir, options)
        except TensorRTMissing as exc:
            raise TensorRTMissing(
                f"the ONNX bundle is in '{bundle_dir}' but no engine was "
                f'built: {exc}; on the device run: perception deploy build '
                f'{bundle_dir}') from None
        print(f"built '{bundle_dir}/{record['engine']}': TensorRT "
              f"{record['tensorrt_version']}, {record['gpu_name']} (sm "
              f"{record['compute_capability']}), {record['precision']}")
    return 0


@COMMANDS.register_module(name='deploy')
class DeployCommand(Command):
    name = 'deploy'
    help = ('TensorRT on the device: doctor (what is here), build (engine '
            'from a bundle), check (build + parity + benchmark, one report)')

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest='action', required=True)
        sub.add_parser('doctor', help='device facts and what is missing') \
            .add_argument('--json', action='store_true', help='print JSON')
        build = sub.add_parser('build', help="build the bundle's engine")
        build.add_argument('bundle', help='bundle folder (perception export)')
        add_tensorrt_arguments(build)
        check = sub.add_parser('check', help='build, parity vs the bundle '
                               'reference, benchmark: one JSON report')
        check.add_argument('bundle', help='bundle folder (perception export)')
        check.add_argument('--out', help='report (default '
                           'BUNDLE/deploy_check.json)')
        check.add_argument('--runs', type=int, default=50,
                           help='timed runs (default 50)')
        add_tensorrt_arguments(check)

    def run(self, args):
        if args.action == 'doctor':
            from perception.deploy.doctor import collect, format_report
            facts = collect()
            if args.json:
                print(json.dumps(facts, indent=2, default=str))
            else:
                print('\n'.join(format_report(facts)))
            return 0
        if args.action == 'build':
            args.format = 'tensorrt'
            return build_engine_after_export(args, args.bundle)
        from perception.deploy.check import deploy_check
        if args.print_trtexec:
            from perception.deploy.tensorrt.builder import trtexec_command
            print(trtexec_command(args.bundle, build_options(args)))
        report = deploy_check(args.bundle, args.out, args.runs,
                              build_options(args))
        print(report['parity']['summary'])
        latency = report['latency']
        print(f"latency {latency['shape']}: p50 {latency['p50_ms']} ms, p90 "
              f"{latency['p90_ms']} ms, p99 {latency['p99_ms']} ms")
        print(f"deploy check {report['status']}: report in "
              f"{args.out or args.bundle + '/deploy_check.json'}")
        return 0 if report['status'] == 'passed' else 1
