"""Decoded PyAV frames to RGB uint8 arrays, as ``frame.to_ndarray(
format='rgb24')`` gives them (same swscale call, same pixels) without its
per-frame costs.

``to_ndarray`` builds a swscale context (and its slice threads) for every
frame, and returns a view of a fresh frame buffer. A consumer that holds
the previous frame while the next one is converted (any ``for frame in
source`` loop does) makes glibc hand out fresh pages for most buffers: 6 MB
of page faults per 1080p frame, about as costly as the conversion itself.
:class:`RgbConverter` keeps one context for the stream and copies each
picture into one of a few arrays it reuses once the consumer has let go of
them (a reference count says so), so steady-state decoding touches no new
memory.
"""
from __future__ import annotations

import sys

import numpy as np


class ArrayPool:
    """Up to ``size`` uint8 arrays, each handed out again once nothing
    outside the pool refers to it.

    A pooled array is free when its reference count is what it was when
    only the pool held it; views, ``torch.from_numpy`` and containers all
    count, so an array still in use is never handed out twice.
    """

    def __init__(self, size: int = 3) -> None:
        self.size = int(size)
        self._arrays: list[np.ndarray] = []
        self._idle_refs: int | None = None

    def _refs(self, i: int) -> int:
        return sys.getrefcount(self._arrays[i])

    def take(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """A free array of ``shape``, or None when all are in use (the
        caller keeps its own array then)."""
        spare = None
        # by index: a loop variable (or enumerate's tuple) would count too
        for i in range(len(self._arrays)):
            if self._refs(i) != self._idle_refs:
                continue
            if self._arrays[i].shape == shape:
                return self._arrays[i]
            spare = i
        if spare is None and len(self._arrays) >= self.size:
            return None
        fresh = np.empty(shape, np.uint8)
        if spare is None:
            self._arrays.append(fresh)
            spare = len(self._arrays) - 1
        else:  # the picture size changed: replace an idle array
            self._arrays[spare] = fresh
        del fresh
        if self._idle_refs is None:
            self._idle_refs = self._refs(spare)
        return self._arrays[spare]

    def clear(self) -> None:
        """Drop the pool's references (arrays in use stay valid)."""
        self._arrays.clear()


class RgbConverter:
    """Converts decoded PyAV video frames to RGB uint8 (H, W, 3) arrays.

    Args:
        threads: swscale slice threads (0: one per CPU, as ``to_ndarray``).
        pool: arrays to reuse (0: return PyAV's own array, one fresh buffer
            per frame).
    """

    def __init__(self, threads: int = 0, pool: int = 3) -> None:
        from av.video.reformatter import VideoReformatter
        self.threads = int(threads)
        self._reformatter = VideoReformatter()
        self._pool = ArrayPool(pool) if pool else None

    def __call__(self, frame) -> np.ndarray:
        rgb = self._reformatter.reformat(frame, format='rgb24',
                                         threads=self.threads).to_ndarray()
        if self._pool is None:
            return rgb
        out = self._pool.take(rgb.shape)
        if out is None:
            return rgb
        np.copyto(out, rgb)
        return out

    def close(self) -> None:
        """Release the pooled arrays and the swscale context."""
        if self._pool is not None:
            self._pool.clear()
        self._reformatter = None
