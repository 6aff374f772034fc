"""CPU mixed precision: mmengine's ``AmpOptimWrapper`` asserts a GPU, so
CPU runs get :class:`CPUAmpOptimWrapper` (bf16 autocast, no grad scaler)."""
from __future__ import annotations

import contextlib

import torch
from mmengine.optim import OptimWrapper

from perception.registry import OPTIM_WRAPPERS

_CUDA_ONLY_KEYS = ('loss_scale', 'use_fsdp')


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under
    ``torch.autocast('cpu', dtype=torch.bfloat16)``.

    bfloat16 has float32's exponent range, so gradients need no loss
    scaling: ``backward``/``step`` are plain ``OptimWrapper``'s.

    Args:
        dtype: autocast dtype, ``'bfloat16'`` (the default and the one CPU
            matmuls are fast in) or ``'float16'``.
        loss_scale: accepted for drop-in use of an ``AmpOptimWrapper``
            config and ignored (no scaler with bf16).
        **kwargs: passed to ``OptimWrapper`` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, dtype: str | torch.dtype | None = 'bfloat16',
                 loss_scale=None, use_fsdp: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        dtype = 'bfloat16' if dtype is None else dtype
        if isinstance(dtype, str):
            if dtype not in ('bfloat16', 'float16'):
                raise ValueError(f"CPUAmpOptimWrapper: dtype must be "
                                 f"'bfloat16' or 'float16', got {dtype!r}")
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` plus CPU
        autocast."""
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=self.cast_dtype):
            yield


def cpu_amp_optim_wrapper(cfg: dict) -> dict:
    """Turn an ``AmpOptimWrapper`` config into a ``CPUAmpOptimWrapper`` one
    (for runs without a GPU); other configs are returned unchanged."""
    cfg = dict(cfg)
    if cfg.get('type') not in ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper'):
        return cfg
    cfg['type'] = 'CPUAmpOptimWrapper'
    for key in _CUDA_ONLY_KEYS:
        cfg.pop(key, None)
    if cfg.get('dtype') not in (None, 'bfloat16', 'float16', torch.bfloat16,
                                torch.float16):
        cfg['dtype'] = 'bfloat16'
    return cfg
