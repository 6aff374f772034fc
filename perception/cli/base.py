"""The :class:`Command` base of every ``perception`` subcommand, core and
plugin alike.

A subcommand is a :class:`Command` subclass registered in ``COMMANDS``. Its
module must import nothing heavy (no torch) at module level, so that
``perception --help`` stays fast: import what ``run`` needs inside ``run``.
Every command has ``main(argv)`` so tests call it without a shell; user
errors (:mod:`perception.errors`) print one line and return 2, anything else
prints its traceback and returns 1.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from typing import Sequence

from perception.errors import is_user_error


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
        """Parse ``argv``, run, and turn errors into exit statuses."""
        args = self.make_parser().parse_args(
            list(sys.argv[1:] if argv is None else argv))
        return self.guarded(lambda: self.run(args))

    def guarded(self, action) -> int:
        """Run ``action()``; a user error is one line on stderr and exit 2,
        an unexpected error its traceback and exit 1."""
        try:
            return int(action() or 0)
        except KeyboardInterrupt:
            print(f'perception {self.name}: interrupted', file=sys.stderr)
            return 130
        except Exception as exc:  # every error leaves as an exit status
            translated = _translate(exc)
            if translated is not None:
                message = str(translated).strip() or type(translated).__name__
                print(f'perception {self.name}: error: {message}',
                      file=sys.stderr)
                return 2
            traceback.print_exc()
            print(f'perception {self.name}: unexpected error (a bug: please '
                  'report it with the traceback above)', file=sys.stderr)
            return 1


def _translate(exc: BaseException) -> BaseException | None:
    """``exc`` if it is the user's to fix (mmengine's unknown-type KeyError
    becomes the helpful registry message), else None."""
    if is_user_error(exc):
        return exc
    if isinstance(exc, KeyError):
        from perception.registry import translate_unknown_type
        return translate_unknown_type(exc)
    return None
