"""The ``perception`` command: core subcommands and those plugins register
in ``COMMANDS``.

Listing and dispatch import only command modules, which import no torch: a
plugin declares its ``COMMAND_MODULES`` (see :mod:`perception.plugins`), so
``perception --help`` lists every plugin's commands without loading any
plugin's classes. This package imports no plugin.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from perception.cli.base import Command

__all__ = ['Command', 'all_commands', 'main']

#: plugins whose commands failed to load in this process (for --help).
FAILED_PLUGINS: list[str] = []


def all_commands() -> dict[str, Command]:
    """Every registered subcommand by name (core and plugins)."""
    from perception.plugins import load_commands
    from perception.registry import COMMANDS, CORE_COMMAND_MODULES
    for module in CORE_COMMAND_MODULES:
        importlib.import_module(module)
    FAILED_PLUGINS[:] = load_commands()
    commands = {}
    for name, cls in sorted(COMMANDS.module_dict.items()):
        command = cls()
        commands[command.name or name] = command
    return commands


def make_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
    """The top-level parser (for ``--help``): one line per command."""
    from perception import __version__
    parser = argparse.ArgumentParser(
        prog='perception',
        description='Multimodal perception toolkit (driving cameras, DICOM): '
        'train, test, export, infer, benchmark.',
        epilog='`perception COMMAND --help` explains one command; '
        '`perception plugins` lists what each plugin registered.' + (
            f" Not loaded: {', '.join(FAILED_PLUGINS)} (`perception plugins` "
            'says why).' if FAILED_PLUGINS else ''))
    parser.add_argument('--version', action='version',
                        version=f'perception {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, command in commands.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perception`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = all_commands()
    if not argv or argv[0] in ('-h', '--help', '--version'):
        parser = make_parser(commands)
        if argv and argv[0] == '--version':
            parser.parse_args(argv)
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        import difflib
        close = difflib.get_close_matches(name, commands, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ''
        print(f"perception: error: unknown command '{name}'.{hint} "
              f"Commands: {', '.join(commands)} (`perception --help`; "
              '`perception plugins` shows plugins that failed to load).',
              file=sys.stderr)
        return 2
    return commands[name].main(rest)
