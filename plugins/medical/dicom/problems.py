"""What every part of the DICOM reader shares: :class:`DicomReadError`,
:class:`DicomProblemWarning`, the per-thread capture of pydicom's warnings
and :func:`fail`, which builds an error naming the file."""
from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

from perception.errors import UserError

__all__ = ['DicomReadError', 'DicomProblemWarning', 'captured_warnings', 'fail',
           'tag_name']


class DicomReadError(UserError, ValueError):
    """A DICOM file cannot be read; the message names the file, the reason
    and, where a decoder is missing, the pip package to install."""


class DicomProblemWarning(UserWarning):
    """Broken-but-readable data (pydicom warned while reading the file);
    the message names the file."""


# -- per-thread capture of pydicom's warnings ---------------------------
# warnings.catch_warnings() swaps process-wide state, which is wrong when the
# header scan reads files in threads; instead one hook routes each warning to
# the list of the thread that raised it.
_capture = threading.local()
_hook_lock = threading.Lock()
_hook_users = 0
_saved: tuple | None = None


def _route(message, category, filename, lineno, file=None, line=None):
    sink = getattr(_capture, 'sink', None)
    if sink is not None:
        sink.append(str(message))
        return
    original = _saved[0] if _saved is not None else None
    if original is None or original is getattr(warnings,
                                               '_showwarning_orig', None):
        # not ours: hand it to whatever records warnings now (pytest,
        # catch_warnings(record=True)) as if the hook were not there
        warnings._showwarnmsg_impl(warnings.WarningMessage(
            message, category, filename, lineno, file, line))
    else:
        original(message, category, filename, lineno, file, line)


def _filters_changed() -> None:
    # the warnings module caches filter decisions; tell it they changed
    for name in ('_filters_mutated', '_filters_mutated_lock_held'):
        if hasattr(warnings, name):
            getattr(warnings, name)()
            return


@contextmanager
def captured_warnings(sink: list[str]) -> Iterator[list[str]]:
    """Collect warnings raised in this thread into ``sink``."""
    global _hook_users, _saved
    with _hook_lock:
        if _hook_users == 0:
            _saved = (warnings.showwarning, list(warnings.filters))
            warnings.showwarning = _route
            # 'always': the default filter would drop the second file's copy
            warnings.filters.insert(0, ('always', None, Warning, None, 0))
            _filters_changed()
        _hook_users += 1
    previous, _capture.sink = getattr(_capture, 'sink', None), sink
    try:
        yield sink
    finally:
        _capture.sink = previous
        with _hook_lock:
            _hook_users -= 1
            if _hook_users == 0 and _saved is not None:
                warnings.showwarning = _saved[0]
                warnings.filters[:] = _saved[1]
                _filters_changed()
                _saved = None


def fail(path: str, reason: str, notes: Sequence[str] = ()) -> DicomReadError:
    extra = f" (pydicom warned: {'; '.join(notes)})" if notes else ''
    return DicomReadError(f'{path}: {reason}{extra}')


def tag_name(tag) -> str:
    """``Keyword (gggg,eeee)`` of a tag (an int or a pydicom Tag)."""
    from pydicom.datadict import keyword_for_tag
    tag = int(tag)
    text = f'({tag >> 16:04X},{tag & 0xFFFF:04X})'
    keyword = keyword_for_tag(tag)
    return f'{keyword} {text}' if keyword else text
