"""Which sample each dataloader worker is reading right now, readable by the
main process after the worker crashed or hung.

Each worker writes ``(pid, index + 1)`` into its slot of a small shared
file (memory-mapped; a slot write is two stores, no system call) before it
reads a sample and clears it after. The main process only needs the path,
a plain string, so the dataset pickles and copies as before (fork or spawn).
"""
from __future__ import annotations

import mmap
import os
import struct
import tempfile
import uuid
import weakref

SLOTS = 64
_SLOT = struct.Struct('<qq')  # pid, index + 1 (0: idle)


class InFlight:
    """Slots of ``(pid, index)`` per worker id, in a file under the temp dir
    (created by the first worker that writes; removed with the owner)."""

    def __init__(self, owner: object) -> None:
        self.path = os.path.join(tempfile.gettempdir(),
                                 f'perception-inflight-{uuid.uuid4().hex}')
        self._map: mmap.mmap | None = None
        weakref.finalize(owner, _remove, self.path, os.getpid())

    def __getstate__(self) -> dict:
        return {'path': self.path, '_map': None}

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size < SLOTS * _SLOT.size:
                    os.ftruncate(fd, SLOTS * _SLOT.size)
                self._map = mmap.mmap(fd, SLOTS * _SLOT.size)
            finally:
                os.close(fd)
        return self._map

    def mark(self, index: int | None) -> None:
        """Worker side: now reading ``index`` (None: done). No-op in the
        main process (a crash there is the process's own traceback)."""
        from torch.utils.data import get_worker_info
        info = get_worker_info()
        if info is None or info.id >= SLOTS:
            return
        value = (os.getpid(), 0 if index is None else int(index) + 1)
        _SLOT.pack_into(self._mapped(), info.id * _SLOT.size, *value)

    def busy(self) -> list[tuple[int, int]]:
        """Main side: ``[(pid, index)]`` of the samples workers were reading
        when last seen."""
        if not os.path.isfile(self.path):
            return []
        with open(self.path, 'rb') as f:
            data = f.read()
        found = []
        for offset in range(0, len(data) - _SLOT.size + 1, _SLOT.size):
            pid, index = _SLOT.unpack_from(data, offset)
            if index:
                found.append((pid, index - 1))
        return found


def _remove(path: str, owner_pid: int) -> None:
    if os.getpid() != owner_pid:  # a forked worker's copy: not its file
        return
    try:
        os.remove(path)
    except OSError:
        pass
