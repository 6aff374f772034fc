"""Routing mmengine's checkpoint loading through the safe loader of
:mod:`perception.fileio`, installed explicitly by
:func:`install_safe_loading` (every run the engine builds calls it): the
local-file scheme of ``CheckpointLoader`` (``load_from``, ``--resume``,
``perception test CKPT``, ``init_cfg=dict(type='Pretrained')`` on mmengine
modules) and every other ``torch.load`` and ``load_url`` inside
``mmengine.runner.checkpoint`` (URLs, ``torchvision://``, ``s3://``...).

The safe loader's names are re-exported here for existing callers.
"""
from __future__ import annotations

import os
import types
import urllib.parse
from typing import Any

import torch

from perception.fileio import (
    UnsafeCheckpointError,
    checkpoints_trusted,
    decode_state,
    encode_state,
    load_checkpoint_file,
    resolve_checkpoint,
    trust_checkpoints,
    unsafe_entries,
)

__all__ = [
    'install_safe_loading', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'resolve_checkpoint', 'trust_checkpoints', 'checkpoints_trusted',
    'encode_state', 'decode_state', 'unsafe_entries'
]


# -- route mmengine's loading through the safe loader ----------------------


def load_from_safe_local(filename: str, map_location: Any = None) -> Any:
    return load_checkpoint_file(filename, map_location=map_location)


class _SafeTorch(types.ModuleType):
    """``torch`` as seen by mmengine's checkpoint modules: the same module
    except that ``load`` is :func:`load_checkpoint_file`."""

    def __init__(self) -> None:
        super().__init__('torch')

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, *args, **kwargs) -> Any:
        return load_checkpoint_file(f, map_location=map_location)


def _load_url(url: str, model_dir: str | None = None, map_location: Any = None,
              progress: bool = True, check_hash: bool = False,
              file_name: str | None = None) -> Any:
    """mmengine's ``load_url`` (torch.hub's, which unpickles fully by
    default): download into the hub cache, then load safely."""
    model_dir = model_dir or os.path.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = file_name or os.path.basename(urllib.parse.urlparse(url).path)
    cached = os.path.join(model_dir, name)
    if not os.path.exists(cached):
        match = torch.hub.HASH_REGEX.search(name) if check_hash else None
        torch.hub.download_url_to_file(
            url, cached, match.group(1) if match else None, progress=progress)
    return load_checkpoint_file(cached, map_location=map_location)


def install_safe_loading() -> None:
    """Route mmengine's checkpoint loading through the safe loader
    (idempotent)."""
    from mmengine.runner import checkpoint as mm_checkpoint
    mm_checkpoint.CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_safe_local, force=True)
    # URLs, torchvision://, open-mmlab://... go through load_url; pavi://
    # and s3:// call torch.load on a buffer.
    mm_checkpoint.load_url = _load_url
    if not isinstance(mm_checkpoint.torch, _SafeTorch):
        mm_checkpoint.torch = _SafeTorch()
