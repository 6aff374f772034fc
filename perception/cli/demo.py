"""``perception demo [driving|medical|all] [--work-dir DIR] [--fast]``: the
whole pipeline on generated data, through :func:`perception.apis.demo`.
Imports no torch at module level."""
from __future__ import annotations

from perception.cli.base import Command
from perception.registry import COMMANDS


@COMMANDS.register_module(name='demo')
class DemoCommand(Command):
    name = 'demo'
    help = ('the whole pipeline on generated data, on CPU: pretraining, '
            'fine-tuning against scratch, export, inference; writes '
            'report.html')

    def add_arguments(self, parser):
        parser.add_argument('parts', nargs='*', default=['all'],
                            metavar='PART', help='driving, medical or all '
                            '(default all; parts come with their plugins)')
        parser.add_argument('--work-dir', default='work_dirs/demo',
                            help='output folder (default work_dirs/demo)')
        parser.add_argument('--fast', action='store_true',
                            help='the tiny variant (about a minute a part)')

    def run(self, args):
        from perception import apis
        parts = ['all'] if 'all' in args.parts else args.parts
        apis.demo(parts, work_dir=args.work_dir, fast=args.fast)
        return 0
