"""Checkpoints that cannot be half-written, and resuming from the newest
complete one.

Every file mmengine writes through its local file backend (checkpoints) and
the ``last_checkpoint`` note of its ``CheckpointHook`` go through
:func:`atomic_write`: the bytes go to a temporary file beside the target,
are flushed and ``fsync``-ed, and the temporary file is renamed onto the
target (atomic on POSIX), then the folder is synced. A process killed at any
moment leaves either the old file or the new one, never a torn one; the
CheckpointHook writes ``last_checkpoint`` only after the checkpoint's rename.
A write that fails (a full disk: ``ENOSPC``) removes its temporary file,
leaves the previous checkpoint as it was and stops the run with a
:class:`CheckpointSaveError` saying so.

:func:`find_resumable_checkpoint` is what ``--resume`` uses: the newest
complete checkpoint the runner wrote in the work dir (``last_checkpoint``
can be one save behind after a kill between the rename and the note), each
skipped one named in a warning. A checkpoint is complete when torch's zip
container reads through with every CRC right.

``PERCEPTION_TEST_SAVE_PAUSE`` (seconds; tests only) pauses every atomic
write half-way through, so a test can kill a run while it saves.
"""
from __future__ import annotations

import builtins
import contextlib
import errno
import glob
import io
import logging
import os
import re
import time
import zipfile

from perception.errors import UserError

__all__ = ['CheckpointSaveError', 'atomic_write', 'checkpoint_problem',
           'find_resumable_checkpoint', 'install_safe_saving']

#: test-only: seconds every atomic write pauses half-way (to be killed there)
PAUSE_ENV = 'PERCEPTION_TEST_SAVE_PAUSE'
_TMP_MARK = '.tmp-'
_CHUNK = 1 << 22

logger = logging.getLogger('perception')


class CheckpointSaveError(UserError, OSError):
    """A checkpoint (or ``last_checkpoint``) could not be written; nothing
    was replaced."""


def _temp_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f'.{name}{_TMP_MARK}{os.getpid()}')


def _previous_note(folder: str) -> str:
    note = os.path.join(folder, 'last_checkpoint')
    try:
        with builtins.open(note, encoding='utf-8') as f:
            named = f.read().strip()
    except OSError:
        return 'no earlier checkpoint was touched'
    return (f'the previous checkpoint {named} is intact and last_checkpoint '
            'still names it' if named else 'no earlier checkpoint was touched')


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never partly written:
    temporary file, fsync, rename, fsync of the folder.

    Raises:
        CheckpointSaveError: the write failed (e.g. no space left); the
            temporary file is removed and ``path`` is unchanged.
    """
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode('utf-8')
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = _temp_path(path)
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    view, written = memoryview(data), 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            paused = pause <= 0
            while written < len(view):
                if not paused and written >= len(view) // 2:
                    time.sleep(pause)
                    paused = True
                end = written + (_CHUNK if paused else min(
                    _CHUNK, max(1, len(view) // 2 - written)))
                written += os.write(fd, view[written:end])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        why = (f'no space left on device in {folder}' if exc.errno ==
               errno.ENOSPC else f'{exc.strerror or exc} ({tmp})')
        raise CheckpointSaveError(
            f'could not save {path}: {why} after {written} of {len(view)} '
            f'bytes; nothing was replaced ({_previous_note(folder)}). Free '
            'space there or pass another --work-dir, then train with '
            '--resume') from None
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class _AtomicTextFile(io.StringIO):
    """What ``open(path, 'w')`` returns inside mmengine's CheckpointHook:
    the text reaches ``path`` atomically on close."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._target = path

    def close(self) -> None:
        if not self.closed:
            text = self.getvalue()
            super().close()
            atomic_write(self._target, text)


def _hook_open(file, mode='r', *args, **kwargs):
    if 'w' in mode and 'b' not in mode and isinstance(file, (str, os.PathLike)):
        return _AtomicTextFile(os.fspath(file))
    return builtins.open(file, mode, *args, **kwargs)


def _put(self, obj: bytes, filepath) -> None:
    atomic_write(filepath, obj)


def _put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
    atomic_write(filepath, obj.encode(encoding))


def install_safe_saving() -> None:
    """Make mmengine's local writes atomic (idempotent): its LocalBackend's
    ``put`` / ``put_text`` (checkpoints) and the ``last_checkpoint`` note
    its CheckpointHook writes."""
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.hooks import checkpoint_hook
    LocalBackend.put = _put
    LocalBackend.put_text = _put_text
    checkpoint_hook.open = _hook_open  # the module's only open(): 'w' notes


# -- resuming ----------------------------------------------------------------


def checkpoint_problem(path: str) -> str | None:
    """Why ``path`` is not a complete checkpoint, or None: torch's zip
    container is read through and every member's CRC checked (a torn or
    flipped file fails)."""
    try:
        if os.path.getsize(path) == 0:
            return 'the file is empty'
        if not zipfile.is_zipfile(path):
            return 'not a complete torch checkpoint (no zip directory: cut short?)'
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return f'member {bad} is corrupt (CRC mismatch)'
            if not any(n.endswith('data.pkl') for n in archive.namelist()):
                return 'no data.pkl inside (not a torch checkpoint)'
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        return f'unreadable: {exc}'
    return None


_RUNNER_NAMES = re.compile(r'^(budget_)?(epoch|iter)_\d+\.pth$')


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return float('inf')  # a note naming a missing file: reported first


def _named_by_note(work_dir: str) -> str | None:
    note = os.path.join(work_dir, 'last_checkpoint')
    if not os.path.isfile(note):
        return None
    with builtins.open(note, encoding='utf-8') as f:
        named = f.read().strip()
    if not named:
        return None
    beside = os.path.join(work_dir, os.path.basename(named))
    return named if os.path.isfile(named) or not os.path.isfile(beside) \
        else beside


def find_resumable_checkpoint(work_dir: str) -> str | None:
    """The newest complete checkpoint of ``work_dir`` among the runner's
    ``epoch_N.pth`` / ``iter_N.pth`` and the one ``last_checkpoint``
    names, by modification time; None if there is none. Each incomplete or
    corrupt one is named in a warning; temporary files of interrupted saves
    are removed."""
    for stale in glob.glob(os.path.join(work_dir, f'.*{_TMP_MARK}*')):
        logger.warning('removing %s, left by a save that was interrupted',
                       stale)
        with contextlib.suppress(OSError):
            os.remove(stale)
    named = _named_by_note(work_dir)
    # what the runner writes (not other weights someone put there); the
    # newest first: a run killed between a save's rename and the note
    # leaves a complete checkpoint newer than the one the note names
    found = [p for p in glob.glob(os.path.join(work_dir, '*.pth'))
             if _RUNNER_NAMES.match(os.path.basename(p))]
    if named and os.path.abspath(named) not in map(os.path.abspath, found):
        found.append(named)
    candidates = sorted(found, key=_mtime, reverse=True)
    for path in candidates:
        if not os.path.isfile(path):
            logger.warning('last_checkpoint names %s, which does not exist; '
                           'looking for an older checkpoint', path)
            continue
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning('skipping checkpoint %s: %s; trying an older one',
                       path, problem)
    return None
