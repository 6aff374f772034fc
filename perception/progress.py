"""Progress for long work, shared by every command and helper.

On a terminal :func:`progress` draws a tqdm bar (count, rate, ETA); when
stderr is not a terminal (CI logs, pipes) it prints a few plain lines instead
(at most one per ``interval_s`` and at every tenth of a known total), so logs
stay readable. ``set_quiet(True)`` (the commands' ``--quiet``) or
``PERCEPTION_QUIET=1`` turns both off. :func:`summary` prints the one-line
summary a command ends with, to stdout; quiet silences progress only, never
the summary.

    with progress(total=len(paths), desc='de-identifying', unit='file') as bar:
        for path in paths:
            ...
            bar.update()
    summary(f'wrote {n} files to {out} in {bar.elapsed:.1f} s')
"""
from __future__ import annotations

import os
import sys
import time
from typing import IO, Iterable, Iterator, TypeVar

T = TypeVar('T')

_QUIET: bool | None = None


def set_quiet(quiet: bool) -> None:
    """Turn progress output off (``True``) or back on for this process."""
    global _QUIET
    _QUIET = bool(quiet)


def is_quiet() -> bool:
    """Whether progress output is off (``set_quiet`` or ``PERCEPTION_QUIET``)."""
    if _QUIET is not None:
        return _QUIET
    return os.environ.get('PERCEPTION_QUIET', '').lower() in ('1', 'true',
                                                              'yes')


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}:{minutes:02d}:{sec:02d}' if hours else f'{minutes}:{sec:02d}'


class Progress:
    """A progress display: a tqdm bar on a terminal, plain lines otherwise,
    nothing when quiet. Use as a context manager or iterate over it."""

    def __init__(self, iterable: Iterable | None = None, *,
                 total: int | None = None, desc: str = '', unit: str = 'it',
                 stream: IO[str] | None = None, quiet: bool | None = None,
                 interval_s: float = 10.0) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable,
                                                              '__len__'):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.desc = desc
        self.unit = unit
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = is_quiet() if quiet is None else quiet
        self.interval_s = interval_s
        self.start = time.perf_counter()
        self._last_line = self.start
        self._last_tenth = 0
        self._postfix = ''
        self._bar = None
        self._closed = False
        if not self.quiet and _is_terminal(self.stream):
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=desc or None, unit=unit,
                             file=self.stream, dynamic_ncols=True,
                             leave=True)

    @property
    def elapsed(self) -> float:
        """Seconds since the display started."""
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        """Items per second so far."""
        return self.count / max(self.elapsed, 1e-9)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.count += n
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.perf_counter()
        tenth = (10 * self.count // self.total) if self.total else 0
        if tenth > self._last_tenth or now - self._last_line >= self.interval_s:
            self._last_tenth = max(tenth, self._last_tenth)
            self._last_line = now
            self._write_line()

    def set_postfix(self, text: str) -> None:
        """Extra text after the count (e.g. ``'3 dropped'``)."""
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def _write_line(self) -> None:
        parts = [f'{self.desc}: ' if self.desc else '']
        if self.total:
            parts.append(f'{self.count}/{self.total} {self.unit} '
                         f'({100 * self.count / self.total:.0f}%)')
        else:
            parts.append(f'{self.count} {self.unit}')
        parts.append(f', {self.rate:.1f} {self.unit}/s')
        if self.total and self.count and self.count < self.total:
            eta = (self.total - self.count) / max(self.rate, 1e-9)
            parts.append(f', ETA {_format_seconds(eta)}')
        if self._postfix:
            parts.append(f', {self._postfix}')
        print(''.join(parts), file=self.stream, flush=True)

    def close(self) -> None:
        """End the display (a final plain line if one is owed)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif not self.quiet and self.count and (
                self.total is None or self._last_tenth < 10):
            self._write_line()

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError('Progress was made without an iterable')
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> 'Progress':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None,
             desc: str = '', unit: str = 'it', **kwargs) -> Progress:
    """A :class:`Progress` over ``iterable`` (or driven by ``update``)."""
    return Progress(iterable, total=total, desc=desc, unit=unit, **kwargs)


def summary(line: str, stream: IO[str] | None = None) -> None:
    """Print a command's closing one-line summary (always, even when quiet)."""
    print(line, file=stream if stream is not None else sys.stdout,
          flush=True)
