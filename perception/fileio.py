"""Safe checkpoint file I/O (timm's ``_helpers.py`` habit), below every
layer that reads weights (models, engine, deploy).

Every checkpoint is read with ``torch.load(weights_only=True)``. A file that
needs arbitrary unpickling (which can run code) is refused with an
:class:`UnsafeCheckpointError` naming the offending globals, unless the user
said the file is trusted (``--trust-checkpoint``, i.e.
:func:`trust_checkpoints`). Nothing is ever allowed process-wide: the trust
switch is ours and only our loader reads it.

:func:`perception.engine.checkpoint.install_safe_loading` routes mmengine's
own loading through :func:`load_checkpoint_file` (done by every run the
engine builds; call it yourself before using mmengine's loaders directly).

Checkpoints perception writes hold only tensors and plain containers: see
:func:`encode_state` / :func:`decode_state` (used by
``perception.engine.hooks.CheckpointStateHook``).
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
from collections import OrderedDict
from typing import Any, Iterator

import numpy as np
import torch

from perception.errors import UserError

__all__ = [
    'CheckpointError', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'resolve_checkpoint', 'trust_checkpoints', 'checkpoints_trusted',
    'encode_state', 'decode_state', 'unsafe_entries'
]

_TAG = '__perception__'
_trusted = False


class CheckpointError(UserError, ValueError):
    """A checkpoint file cannot be used as asked (wrong layout, missing
    record); the message names the file and the fix."""


class UnsafeCheckpointError(UserError, pickle.UnpicklingError):
    """A checkpoint needs arbitrary unpickling and was not trusted."""


@contextlib.contextmanager
def trust_checkpoints(enabled: bool = True) -> Iterator[None]:
    """Within the block, checkpoints that need full unpickling are loaded
    (``--trust-checkpoint``). Only for files whose origin you trust."""
    global _trusted
    previous, _trusted = _trusted, bool(enabled)
    try:
        yield
    finally:
        _trusted = previous


def checkpoints_trusted() -> bool:
    """Whether untrusted-format checkpoints are loaded right now."""
    return _trusted


def _unsafe_globals(source: Any) -> list[str]:
    try:
        if hasattr(source, 'seek'):
            source.seek(0)
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(
            source))
    except Exception:  # legacy (non-zip) format: torch cannot list them
        return []


def load_checkpoint_file(source: str | os.PathLike | io.IOBase,
                         map_location: Any = None,
                         trust: bool | None = None) -> Any:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Args:
        source: a path or a binary file object.
        map_location: as in ``torch.load``.
        trust: load with full unpickling if the safe load fails; ``None``
            follows :func:`trust_checkpoints`.

    Returns:
        The checkpoint, with perception's encoded runner state decoded.

    Raises:
        UnsafeCheckpointError: the file needs arbitrary unpickling and is not
            trusted; the message names the globals it would import.
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) \
        else getattr(source, 'name', '<buffer>')
    if isinstance(source, (str, os.PathLike)):
        source = os.path.expanduser(os.fspath(source))
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f"checkpoint '{name}' not found; check the path (or the "
                "work dir's last_checkpoint file)")
    trust = _trusted if trust is None else trust
    try:
        checkpoint = torch.load(source, map_location=map_location,
                                weights_only=True)
    except pickle.UnpicklingError as exc:
        if trust:
            if hasattr(source, 'seek'):
                source.seek(0)
            checkpoint = torch.load(source, map_location=map_location,
                                    weights_only=False)
        else:
            found = _unsafe_globals(source)
            what = (', '.join(found) if found else
                    f'(torch could not list them: {str(exc).splitlines()[-1]})')
            raise UnsafeCheckpointError(
                f"checkpoint '{name}' needs arbitrary unpickling, which can "
                f'run code; refused. Globals it would import: {what}. '
                'Pass --trust-checkpoint (Python: perception.engine.'
                'trust_checkpoints()) only if you trust where this file '
                'comes from.') from None
    return decode_state(checkpoint)


def resolve_checkpoint(path: str) -> str:
    """A checkpoint file, or a work dir / ``last_checkpoint`` file naming
    one (what mmengine's CheckpointHook writes). URIs (``https://``,
    ``s3://``...) pass through to mmengine's loaders."""
    if '://' in path:
        return path
    if os.path.isdir(path):
        path = os.path.join(path, 'last_checkpoint')
    if os.path.basename(path) == 'last_checkpoint' and os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            named = f.read().strip()
        if not named:
            raise FileNotFoundError(f"'{path}' names no checkpoint")
        # the runner writes the path as seen from where it ran; a work dir
        # that was moved (or a relative path) still holds the file
        beside = os.path.join(os.path.dirname(path), os.path.basename(named))
        if not os.path.isfile(named) and os.path.isfile(beside):
            return beside
        return named
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"checkpoint '{path}' not found; pass a .pth file, a work dir "
            "or its last_checkpoint file")
    return path


# -- runner state as tensors and plain containers --------------------------

# Exact types: numpy.float64 subclasses float but does not load safely.
_PLAIN_LEAVES = (type(None), bool, int, float, complex, str, bytes)
_TORCH_LEAVES = (torch.Tensor, torch.dtype, torch.device)


def _is_safe_leaf(obj: Any) -> bool:
    return type(obj) in _PLAIN_LEAVES or isinstance(obj, _TORCH_LEAVES)


def encode_state(obj: Any) -> Any:
    """Return ``obj`` with mmengine's runner state (``HistoryBuffer``, numpy
    arrays and scalars, frozensets, defaultdicts) turned into tensors and
    plain containers that ``torch.load(weights_only=True)`` accepts.
    Other objects are left alone (see :func:`unsafe_entries`)."""
    from mmengine.logging import HistoryBuffer
    if _is_safe_leaf(obj):
        return obj
    if isinstance(obj, HistoryBuffer):
        logs, counts = obj.data
        return {_TAG: 'HistoryBuffer', 'log_history': encode_state(logs),
                'count_history': encode_state(counts),
                'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return {_TAG: 'ndarray_list', 'data': encode_state(obj.tolist())}
        return {_TAG: 'ndarray', 'data': torch.from_numpy(obj.copy())}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, frozenset):
        return {_TAG: 'frozenset', 'items': [encode_state(v) for v in obj]}
    if isinstance(obj, dict):
        kind = type(obj) if type(obj) in (dict, OrderedDict) else dict
        encoded = kind((k, encode_state(v)) for k, v in obj.items())
        if kind is OrderedDict and hasattr(obj, '_metadata'):
            # state_dict version info
            encoded._metadata = obj._metadata  # type: ignore[attr-defined]
        return encoded
    if isinstance(obj, list):
        return [encode_state(v) for v in obj]
    if isinstance(obj, tuple) and type(obj) is tuple:
        return tuple(encode_state(v) for v in obj)
    if isinstance(obj, set):
        return {encode_state(v) for v in obj}
    return obj


def decode_state(obj: Any) -> Any:
    """Undo :func:`encode_state` (idempotent on decoded data)."""
    if isinstance(obj, dict):
        tag = obj.get(_TAG) if _TAG in obj else None
        if tag == 'HistoryBuffer':
            from mmengine.logging import HistoryBuffer
            return HistoryBuffer(decode_state(obj['log_history']),
                                 decode_state(obj['count_history']),
                                 obj['max_length'])
        if tag == 'ndarray':
            return obj['data'].numpy()
        if tag == 'ndarray_list':
            return np.array(obj['data'], dtype=object)
        if tag == 'frozenset':
            return frozenset(decode_state(v) for v in obj['items'])
        for key, value in obj.items():
            decoded = decode_state(value)
            if decoded is not value:
                obj[key] = decoded
        return obj
    if isinstance(obj, list):
        for i, value in enumerate(obj):
            obj[i] = decode_state(value)
        return obj
    if isinstance(obj, tuple) and type(obj) is tuple:
        return tuple(decode_state(v) for v in obj)
    return obj


def unsafe_entries(obj: Any, path: str = 'checkpoint') -> list[str]:
    """Paths of entries a ``weights_only`` load would refuse, e.g.
    ``["checkpoint['meta']['foo'] (MyClass)"]``."""
    if _is_safe_leaf(obj):
        return []
    if isinstance(obj, dict) and type(obj) in (dict, OrderedDict):
        found = []
        for key, value in obj.items():
            found += unsafe_entries(key, f'{path} key')
            found += unsafe_entries(value, f'{path}[{key!r}]')
        return found
    if type(obj) in (list, tuple, set):
        found = []
        for i, value in enumerate(obj):
            found += unsafe_entries(value, f'{path}[{i}]')
        return found
    return [f'{path} ({type(obj).__module__}.{type(obj).__qualname__})']
