"""``--launcher pytorch`` without a GPU.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and defaults to
nccl, and its Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``,
which DDP refuses for a CPU module. On machines without a GPU we start a
gloo process group ourselves (mmengine then skips ``init_dist``) and ask for
``device_ids=None``.
"""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as torch_dist

from perception.errors import UserError


class LauncherError(UserError, RuntimeError):
    """``--launcher pytorch`` outside torchrun."""


_TORCHRUN_VARS = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                  'MASTER_PORT')


def init_cpu_process_group(timeout_s: float | None = None) -> bool:
    """Start a gloo process group from torchrun's environment when no GPU
    is present.

    Returns:
        True when this call started the group (the caller destroys it).

    Raises:
        LauncherError: not started by torchrun (its variables are missing).
    """
    if torch.cuda.is_available() or torch_dist.is_initialized():
        return False
    missing = [v for v in _TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise LauncherError(
            f"--launcher pytorch needs torchrun's environment "
            f"({', '.join(missing)} not set). Start with "
            '`torchrun --nproc-per-node N $(which perception) train CONFIG '
            '--launcher pytorch` (or tools/dist_train.sh CONFIG N).')
    kwargs = {}
    if timeout_s is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=float(timeout_s))
    torch_dist.init_process_group(
        backend='gloo', init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']), **kwargs)
    return True


def cpu_ddp_wrapper_cfg(cfg: dict | None, find_unused: bool) -> dict:
    """``model_wrapper_cfg`` that makes mmengine wrap a CPU model in DDP
    (``device_ids=None``; mmengine would pass ``[LOCAL_RANK]``)."""
    cfg = dict(cfg or {})
    cfg.setdefault('type', 'MMDistributedDataParallel')
    cfg.setdefault('broadcast_buffers', False)
    cfg.setdefault('find_unused_parameters', find_unused)
    cfg['device_ids'] = None
    return cfg


def add_sync_buffers_hook(cfg) -> None:
    """Give a distributed run mmengine's ``SyncBuffersHook``: buffers
    (BatchNorm running statistics) averaged over the ranks after every
    training epoch and before validation. Without it each rank keeps its
    own statistics (DDP does not broadcast buffers here): the checkpoint
    holds rank 0's, validation on the other ranks uses theirs, and the
    gathered metrics differ from a test of the saved checkpoint."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(h, dict) and h.get('type') == 'SyncBuffersHook'
               for h in hooks):
        hooks.append(dict(type='SyncBuffersHook'))
    cfg.custom_hooks = hooks


def destroy_process_group() -> None:
    """Tear down the group :func:`init_cpu_process_group` started."""
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()
