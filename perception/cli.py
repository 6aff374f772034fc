"""The ``perception`` command: core subcommands and those plugins register
in ``COMMANDS``. This module imports no plugin; plugins arrive through
entry-point discovery."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import perception.data.browser  # noqa: F401
from perception.commands import Command, all_commands
from perception.registry import COMMANDS


def _add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='override config entries, e.g. '
                        'train_cfg.max_iters=10')
    parser.add_argument('--launcher', choices=['none', 'pytorch'],
                        default='none', help='pytorch under torchrun')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow checkpoints that need arbitrary '
                        'unpickling (only for files you trust)')


@COMMANDS.register_module(name='train')
class TrainCommand(Command):
    name = 'train'
    help = 'train a model from a config with the mmengine Runner'

    def add_arguments(self, parser):
        parser.add_argument('config', help='config file (.py)')
        parser.add_argument('--resume', nargs='?', const='auto',
                            metavar='CKPT', help='resume from CKPT, or the '
                            'latest checkpoint in the work dir')
        parser.add_argument('--amp', action='store_true',
                            help='mixed precision (bf16 on CPU, fp16 on GPU)')
        _add_runner_arguments(parser)

    def run(self, args):
        from perception.engine.launch import train
        return train(args)


@COMMANDS.register_module(name='test')
class TestCommand(Command):
    name = 'test'
    help = 'evaluate a checkpoint on the test split of a config'

    def add_arguments(self, parser):
        parser.add_argument('config', help='config file (.py)')
        parser.add_argument('checkpoint', help='checkpoint file (.pth)')
        parser.add_argument('--out', help='write predictions (pickle-free '
                            'JSON) to this file')
        parser.add_argument('--show-dir', help='write pictures of '
                            'predictions to this folder')
        _add_runner_arguments(parser)

    def run(self, args):
        from perception.engine.launch import test
        return test(args)


@COMMANDS.register_module(name='plugins')
class PluginsCommand(Command):
    name = 'plugins'
    help = 'list plugins, their distributions and what they registered'

    def run(self, args):
        from perception.plugin_report import print_plugins
        return print_plugins()


@COMMANDS.register_module(name='benchmark')
class BenchmarkCommand(Command):
    name = 'benchmark'
    help = 'run a benchmark against its baseline (ratios, same run)'

    def add_arguments(self, parser):
        parser.add_argument('name', nargs='?', help='benchmark to run')
        parser.add_argument('--list', action='store_true',
                            help='list the benchmarks')

    def main(self, argv: Sequence[str] | None = None) -> int:
        from perception.benchmarks import all_benchmarks
        argv = list(sys.argv[1:] if argv is None else argv)
        parser = self.make_parser()
        args, rest = parser.parse_known_args(argv)
        benchmarks = all_benchmarks()
        if args.list or not args.name:
            for name, bench in benchmarks.items():
                print(f'{name:12s} {bench.help}')
            return 0 if args.list else 2
        if args.name not in benchmarks:
            print(f"unknown benchmark '{args.name}'; available: "
                  f"{', '.join(benchmarks) or 'none'}", file=sys.stderr)
            return 2
        bench = benchmarks[args.name]
        sub = argparse.ArgumentParser(prog=f'perception benchmark {args.name}',
                                      description=bench.help)
        bench.add_arguments(sub)
        return int(bench.run(sub.parse_args(rest)) or 0)


@COMMANDS.register_module(name='synth-images')
class SynthImagesCommand(Command):
    name = 'synth-images'
    help = 'write generated labelled images (OUT/<class>/*.png)'

    def add_arguments(self, parser):
        parser.add_argument('out', help='output folder')
        parser.add_argument('--n-per-class', type=int, default=32)
        parser.add_argument('--size', type=int, default=64)
        parser.add_argument('--seed', type=int, default=0)

    def run(self, args):
        from perception.data.synthetic import write_shape_images
        paths = write_shape_images(args.out, args.n_per_class, args.size,
                                   seed=args.seed)
        print(f'wrote {len(paths)} images to {args.out}')
        return 0


def make_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='perception',
        description='Multimodal perception toolkit (driving cameras, DICOM): '
        'train, test, export, infer, benchmark.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, command in commands.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perception`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = all_commands()
    parser = make_parser(commands)
    if not argv or argv[0] in ('-h', '--help'):
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        parser.error(f"unknown command '{name}'; choose from "
                     f"{', '.join(commands)}")
    return commands[name].main(rest)

