"""Subcommands of the ``perception`` command.

A subcommand is a :class:`Command` subclass registered in ``COMMANDS``
(the core's here and in :mod:`perception.cli`; plugins register their own).
Every command has ``main(argv)`` so tests call it without a shell.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from perception.registry import COMMANDS


class Command:
    """Base class of subcommands: fill ``name``/``help``, ``add_arguments``
    and ``run``."""

    name: str = ''
    help: str = ''

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the subcommand's arguments."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the exit status."""
        raise NotImplementedError

    def make_parser(self, prog: str | None = None) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(
            prog=prog or f'perception {self.name}', description=self.help)
        self.add_arguments(parser)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.make_parser().parse_args(
            list(sys.argv[1:] if argv is None else argv))
        return int(self.run(args) or 0)


class NotAvailableCommand(Command):
    """A subcommand whose issue has not landed yet: says so, exits 2."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('rest', nargs=argparse.REMAINDER,
                            help='arguments (ignored for now)')

    def run(self, args: argparse.Namespace) -> int:
        print(f'perception {self.name}: not available yet')
        return 2


def all_commands() -> dict[str, Command]:
    """Every registered subcommand by name (core and plugins)."""
    COMMANDS.import_from_location()
    import perception.cli  # noqa: F401  (registers the core subcommands)
    commands = {}
    for name, cls in sorted(COMMANDS.module_dict.items()):
        command = cls()
        commands[command.name or name] = command
    return commands


for _name, _help in (('export', 'export a model to ONNX or TensorRT'),
                     ('infer', 'run a checkpoint / ONNX / engine on a source'),
                     ('demo', 'the whole pipeline on bundled data')):
    COMMANDS.register_module(name=_name, module=type(
        f'{_name.capitalize()}Command', (NotAvailableCommand, ),
        {'name': _name, 'help': _help + ' (not available yet)',
         '__module__': __name__}))
