"""``perception benchmark NAME`` / ``--list``: benchmarks registered in
``BENCHMARKS`` by the core and the plugins."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from perception.benchmarks import Benchmark
from perception.cli.base import Command
from perception.registry import BENCHMARKS, COMMANDS


@COMMANDS.register_module(name='benchmark')
class BenchmarkCommand(Command):
    name = 'benchmark'
    help = 'run a benchmark against its baseline (ratios, same run)'

    def add_arguments(self, parser):
        parser.add_argument('name', nargs='?', help='benchmark to run')
        parser.add_argument('--list', action='store_true',
                            help='list the benchmarks')
        parser.add_argument('--quiet', action='store_true',
                            help='no progress display (tables and the '
                            'summary line stay)')

    def main(self, argv: Sequence[str] | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        argv, own_help = _split_help(argv)
        args, rest = self.make_parser().parse_known_args(argv)
        rest += own_help  # `benchmark NAME --help`: NAME's own options
        return self.guarded(lambda: self._run(args, rest))

    def _run(self, args: argparse.Namespace, rest: list[str]) -> int:
        from perception.benchmarks import all_benchmarks
        benchmarks = all_benchmarks()
        if args.list or not args.name:
            for name, bench in benchmarks.items():
                print(f'{name:18s} {bench.help}')
            return 0 if args.list else 2
        if args.name not in benchmarks:
            print(f"perception benchmark: error: unknown benchmark "
                  f"'{args.name}'; available: "
                  f"{', '.join(benchmarks) or 'none'} (`perception benchmark "
                  '--list`)', file=sys.stderr)
            return 2
        bench = benchmarks[args.name]
        sub = argparse.ArgumentParser(prog=f'perception benchmark {args.name}',
                                      description=bench.help)
        bench.add_arguments(sub)
        # --help and bad options exit here, before anything is switched
        options = sub.parse_args(rest)
        import time

        from perception.progress import set_quiet, summary
        if args.quiet:
            set_quiet(True)
        start = time.perf_counter()
        status = int(bench.run(options) or 0)
        summary(f'benchmark {args.name}: '
                f"{'done' if status == 0 else f'exit status {status}'} in "
                f'{time.perf_counter() - start:.1f} s (results above)')
        return status


@BENCHMARKS.register_module(name='cli-startup')
class CliStartupBenchmark(Benchmark):
    """``perception --help`` in a fresh interpreter, against the same help
    after loading every plugin's classes (what the command did before
    commands were declared apart from the classes)."""

    name = 'cli-startup'
    help = ('`perception --help` in a fresh process vs. the same with every '
            'plugin loaded')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--repeats', type=int, default=5)

    def run(self, args: argparse.Namespace) -> int:
        import subprocess

        from perception.benchmarks import format_table, interleave

        def command(code: str):
            def run_once() -> None:
                subprocess.run([sys.executable, '-c', code], check=True,
                               stdout=subprocess.DEVNULL)
            return run_once
        help_only = 'from perception.cli import main; main(["--help"])'
        loaded = ('from perception.plugins import load_plugins; '
                  'load_plugins(); ' + help_only)
        timings = interleave({'perception --help': command(help_only),
                              'help after loading plugins': command(loaded)},
                             repeats=args.repeats)
        base = timings['help after loading plugins'].median
        rows = [(name, t.median, t.best, base / t.median)
                for name, t in timings.items()]
        print(format_table(('command', 'median s', 'best s',
                            'speed-up vs loaded'), rows))
        return 0


def _split_help(argv: list[str]) -> tuple[list[str], list[str]]:
    """``-h``/``--help`` after the benchmark's name belong to the benchmark
    (its options), not to ``perception benchmark``: (the rest, those)."""
    name_at = next((i for i, a in enumerate(argv) if not a.startswith('-')),
                   None)
    if name_at is None:
        return argv, []
    after = argv[name_at + 1:]
    helps = [a for a in after if a in ('-h', '--help')]
    return (argv[:name_at + 1] + [a for a in after if a not in helps],
            helps)
