"""Decoding DICOM files in a worker process, for untrusted archives.

The header checks of :mod:`~perception_medical.dicom.pixel_checks` stop the
known ways to crash a native decoder, but crafted compressed data can still
reach a C++ ``abort()`` in gdcm or exhaust memory. :class:`IsolatedReader`
runs :func:`~perception_medical.read_dicom` in a long-lived worker process
(started on first use, shared by threads, reused for every file): a worker that
dies (any signal, exit 134 included), runs past ``timeout_s`` or hits its
memory limit turns into a :class:`DicomReadError` for that one file, and the
next file gets a fresh worker. ``read_dicom(path, isolate=True)``,
``load_series(..., isolate=True)`` and the CT datasets' ``isolate=True`` use
it.

Protocol: length-prefixed pickles over the worker's stdin and a private
duplicate of its stdout (the worker points its own fd 1 at stderr, so a C
library printing to stdout cannot corrupt the channel).
"""
from __future__ import annotations

import atexit
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref

import numpy as np

from .problems import DicomReadError

__all__ = ['IsolatedReader', 'read_isolated', 'call_isolated', 'in_worker',
           'DEFAULT_TIMEOUT_S']

DEFAULT_TIMEOUT_S = 120.0
#: longest a fresh worker may take to start and import the reader; not
#: counted against a file's ``timeout_s`` (a loaded machine can take seconds)
START_TIMEOUT_S = 120.0
_READER_MODULE = 'perception_medical.dicom.reading'
_WORKER_FLAG = 'PERCEPTION_DICOM_WORKER'
_HEADER = struct.Struct('<Q')
_readers: 'weakref.WeakSet[IsolatedReader]' = weakref.WeakSet()
_local = threading.local()
_idle: list['IsolatedReader'] = []
_pool_lock = threading.Lock()
_MAX_IDLE = max(2, os.cpu_count() or 1)


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return f'killed by {signal.Signals(-returncode).name}'
        except ValueError:
            return f'killed by signal {-returncode}'
    if returncode == 134:   # a shell's report of SIGABRT
        return 'exit status 134, SIGABRT'
    return f'exit status {returncode}'


class IsolatedReader:
    """A worker process that reads DICOM files; restarted after a crash.

    Args:
        timeout_s: longest time one file may take; the worker is killed
            after it and the file is a :class:`DicomReadError`.
        memory_limit: address-space limit of the worker in bytes
            (``RLIMIT_AS``), or None for no limit.
    """

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S,
                 memory_limit: int | None = None) -> None:
        self.timeout_s = float(timeout_s)
        self.memory_limit = memory_limit
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.restarts = 0
        _readers.add(self)

    def _forget(self) -> None:
        """In a forked child: drop the parent's worker without stopping it."""
        self._proc, self._stderr = None, None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # -- worker lifecycle --------------------------------------------------
    def _start(self) -> subprocess.Popen:
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ, **{_WORKER_FLAG: '1'})
        if self.memory_limit:
            env['PERCEPTION_DICOM_WORKER_MEMORY'] = str(int(self.memory_limit))
        self._proc = subprocess.Popen(
            [sys.executable, '-m', 'perception_medical.dicom.isolation'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, close_fds=True)
        try:
            ready = self._receive(self._proc, 'the isolated DICOM worker',
                                  START_TIMEOUT_S, 'starting')
        except (BrokenPipeError, EOFError, OSError):
            ready = None
        if ready != ('ready', None):
            if self._proc.poll() is None:   # alive but not speaking the protocol
                self._proc.kill()
            self._proc.wait()
            detail = self._stderr_tail()
            self._stop()
            raise DicomReadError(
                'the isolated DICOM worker did not start'
                + (f': {detail}' if detail else '')
                + f'; check that `{sys.executable} -m '
                'perception_medical.dicom.isolation` runs')
        return self._proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """Stop the worker (a later call starts a new one)."""
        with self._lock:
            self._stop()

    def __enter__(self) -> 'IsolatedReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if self._pid == os.getpid():
                self._stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ''
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 2000))
        lines = [ln.strip() for ln in self._stderr.read().decode('utf-8', 'replace')
                 .splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ''

    # -- requests ----------------------------------------------------------
    def call(self, path: str, module: str, function: str, *args):
        """``module.function(*args)`` in the worker; ``path`` names the file
        in errors. A crash, a timeout or any exception is a
        :class:`DicomReadError` naming ``path``."""
        with self._lock:
            return self._call(os.fspath(path), module, function, args)

    def _call(self, path: str, module: str, function: str, args: tuple):
        proc = self._proc if self._proc is not None and self._proc.poll() is None \
            else self._start()
        payload = pickle.dumps((module, function, args), protocol=5)
        try:
            proc.stdin.write(_HEADER.pack(len(payload)) + payload)
            proc.stdin.flush()
            reply = self._receive(proc, path, self.timeout_s, 'decoding')
        except (BrokenPipeError, EOFError, OSError):
            reply = None
        if reply is None:
            proc.wait()
            detail = self._stderr_tail()
            how = _signal_name(proc.returncode)
            self._stop()
            self.restarts += 1
            raise DicomReadError(
                f'{path}: the decoder crashed in the isolated worker ({how})'
                + (f': {detail}' if detail else '')
                + '; the file is corrupted or crafted and was not read')
        kind, value = reply
        if kind == 'ok':
            return value
        raise DicomReadError(value if kind == 'read_error' else f'{path}: {value}')

    def _receive(self, proc: subprocess.Popen, path: str, timeout_s: float,
                 doing: str):
        """The worker's next reply (None: it died); past ``timeout_s`` it
        is stopped and ``path`` (the file, or the worker while ``doing`` is
        'starting') is a :class:`DicomReadError`."""
        deadline = time.monotonic() + timeout_s
        fd = proc.stdout.fileno()
        chunks, need, header = [], _HEADER.size, True
        while True:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                self._stop()
                if doing == 'starting':
                    raise DicomReadError(
                        f'{path} took longer than {timeout_s:g} s to start')
                self.restarts += 1
                raise DicomReadError(
                    f'{path}: {doing} took longer than {timeout_s:g} s in the '
                    'isolated worker and was stopped; the file is corrupted or crafted')
            data = os.read(fd, min(need, 1 << 20))
            if not data:
                return None     # the worker died
            chunks.append(data)
            need -= len(data)
            if need:
                continue
            blob = b''.join(chunks)
            chunks = []
            if header:
                need, header = _HEADER.unpack(blob)[0], False
                if need == 0:
                    return None
                continue
            return pickle.loads(blob)

    def read(self, path: str | os.PathLike, problems: list[str] | None = None
             ) -> np.ndarray:
        """:func:`~perception_medical.read_dicom` of ``path`` in the worker."""
        out, found = self.call(os.fspath(path), _READER_MODULE,
                               '_read', os.fspath(path))
        if problems is not None:
            problems.extend(found)
        return out


def in_worker() -> bool:
    """Whether this process is an isolation worker."""
    return os.environ.get(_WORKER_FLAG) == '1'


def call_isolated(path: str, module: str, function: str, *args):
    """``module.function(*args)`` in a worker process; errors as in
    :meth:`IsolatedReader.call`. Workers are shared: a thread takes an idle
    one (or starts one) and hands it back, so the threads of one
    ``load_series`` and later calls reuse the same few processes."""
    reader = getattr(_local, 'reader', None)   # a caller's own (tests)
    if reader is not None:
        return reader.call(path, module, function, *args)
    with _pool_lock:
        reader = _idle.pop() if _idle else IsolatedReader()
    try:
        return reader.call(path, module, function, *args)
    finally:
        with _pool_lock:
            if len(_idle) < _MAX_IDLE:
                _idle.append(reader)
            else:
                reader.close()


def read_isolated(path: str) -> tuple[np.ndarray, list[str]]:
    """(pixels, problems) of ``path`` read by this thread's worker."""
    return call_isolated(path, _READER_MODULE, '_read', path)


@atexit.register
def _close_all() -> None:
    for reader in list(_readers):
        if reader._pid == os.getpid():
            reader.close()


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) must not talk to its parent's
    workers through the inherited pipes: it forgets them (they stay the
    parent's) and starts its own on first use."""
    global _pool_lock, _local
    _pool_lock = threading.Lock()
    _local = threading.local()
    _idle.clear()
    for reader in list(_readers):
        reader._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the worker ------------------------------------------------------------
def _serve() -> None:
    channel = os.fdopen(os.dup(1), 'wb')
    os.dup2(2, 1)           # stray prints of C libraries go to stderr
    requests = sys.stdin.buffer
    limit = os.environ.get('PERCEPTION_DICOM_WORKER_MEMORY')
    if limit:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    importlib.import_module(_READER_MODULE)   # before the first file's clock
    _send(channel, ('ready', None))
    while True:
        head = requests.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return
        module, function, args = pickle.loads(requests.read(_HEADER.unpack(head)[0]))
        try:
            reply = ('ok', getattr(importlib.import_module(module), function)(*args))
        except DicomReadError as exc:
            reply = ('read_error', str(exc))
        except MemoryError:
            reply = ('error', 'the decoded pixels do not fit in the worker\'s memory '
                              'limit; the header is corrupted or the file too large')
        except BaseException as exc:  # noqa: BLE001 - a Rust panic included
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            reply = ('error', f'{type(exc).__name__}: {exc}')
        _send(channel, reply)


def _send(channel, reply: tuple) -> None:
    blob = pickle.dumps(reply, protocol=5)
    channel.write(_HEADER.pack(len(blob)) + blob)
    channel.flush()


if __name__ == '__main__':
    _serve()
