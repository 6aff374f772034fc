"""Where the core and the plugins keep what they rebuild on demand (decoded
camera frames, DICOM series indexes): ``$PERCEPTION_CACHE`` when it is set
and not empty, else ``~/.cache/perception``; one sub-folder per kind."""
from __future__ import annotations

import os

__all__ = ['cache_root', 'cache_dir']


def cache_root() -> str:
    """``$PERCEPTION_CACHE`` (when set and not empty) or
    ``~/.cache/perception``. Not created here."""
    return os.environ.get('PERCEPTION_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'perception')


def cache_dir(kind: str) -> str:
    """The cache folder of one kind of thing, e.g. ``cache_dir('frames')``
    -> ``$PERCEPTION_CACHE/frames``. Not created here: writers create it
    when they first write."""
    if not kind or os.path.isabs(kind) or '..' in kind.split(os.sep):
        raise ValueError(f'cache_dir: kind must be a plain folder name like '
                         f"'frames', got {kind!r}")
    return os.path.join(cache_root(), kind)
