"""Errors the user can fix (a bad path, config, input file, unknown type, a
refused checkpoint). Every command prints such an error as one line saying
what was wrong and how to fix it, and exits 2; any other exception is a bug
and is printed with its traceback (exit 1).

Errors of the core and the plugins subclass :class:`UserError` (with the
builtin they have always been, e.g. ``ValueError``), so callers keep catching
what they caught before and the command line needs no list of error types.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input the user can fix; the message says what, where and how."""


#: builtin errors that also mean bad input when they reach a command.
BUILTIN_USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError,
                                                        NotADirectoryError,
                                                        IsADirectoryError,
                                                        PermissionError)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's to fix (one line, exit 2)."""
    return isinstance(exc, (UserError, ) + BUILTIN_USER_ERRORS)
