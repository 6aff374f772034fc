"""Ctrl-C during ``perception infer``: a frame is recorded whole or not at
all.

Python raises ``KeyboardInterrupt`` at whatever bytecode the main thread is
running when SIGINT arrives. Raised between a frame's JSON record and the
queueing of its MP4 frame (or while that queueing waits for a full writer
queue), it left a frame counted and listed but missing from the video.
:class:`CtrlC` raises at once while the run waits for the source or the
model, holds the signal until the end of a :meth:`CtrlC.writing` block, and
drops every later one (a second Ctrl-C must not cut the files being
written).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Any, Iterator

__all__ = ['CtrlC']


class CtrlC:
    """SIGINT handling of one run, as a context manager (main thread only;
    elsewhere, or where SIGINT is ignored, it does nothing).

    Inside ``with CtrlC() as ctrl_c:`` the first SIGINT raises
    ``KeyboardInterrupt``, except within ``with ctrl_c.writing():``, whose
    end raises it; SIGINTs after the first are ignored (:attr:`received`
    counts them all). The previous handler is restored on exit.
    """

    def __init__(self) -> None:
        self.received = 0
        self._writing = False
        self._held = False
        self._raised = False
        self._ignoring = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self._raised or self._held or self._ignoring:
            return
        if self._writing:
            self._held = True
            return
        self._raised = True
        raise KeyboardInterrupt

    @property
    def interrupted(self) -> bool:
        """Whether a SIGINT arrived (raised or held)."""
        return self._raised or self._held

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A block that SIGINT does not cut: a signal within it raises
        ``KeyboardInterrupt`` when it ends (not when an exception leaves
        it)."""
        if self._writing:  # nested: the outer block raises
            yield
            return
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
        if self._held and not self._raised:
            self._held, self._raised = False, True
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def ignored(self) -> Iterator[None]:
        """A block in which every SIGINT is dropped (the final writes)."""
        ignoring, self._ignoring = self._ignoring, True
        try:
            yield
        finally:
            self._ignoring = ignoring
