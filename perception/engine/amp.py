"""Which mixed precision a training run uses, and why.

``amp`` (config key, default ``'auto'`` in ``configs/_base_/default_runtime.py``;
``perception train --amp MODE`` overrides it):

* ``'auto'``: bf16 autocast where the hardware computes in bf16 natively:
  a CUDA GPU that supports bf16 (compute capability 8.0 and later), or a
  CPU with ``avx512_bf16`` or AMX (``amx_bf16``) in its ``/proc/cpuinfo``
  flags; fp32 elsewhere (emulated bf16 on an older CPU is slower than fp32).
* ``'bf16'`` / ``'fp16'``: that autocast dtype whatever the hardware.
* ``'off'``: fp32.

A config whose ``optim_wrapper`` already asks for AMP (``AmpOptimWrapper``,
``CPUAmpOptimWrapper``) keeps it under ``'auto'``. The choice and its reason
go to the run's log before the first iteration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from perception.engine.config import ConfigError
from perception.engine.optim import cpu_amp_optim_wrapper

#: accepted values of ``amp`` (``True`` means ``'bf16'``, ``False``/None
#: ``'off'``, as the flag meant before ``'auto'``).
AMP_MODES = ('auto', 'bf16', 'fp16', 'off')
#: CPU flags of native bf16 arithmetic (Cooper Lake / Sapphire Rapids and
#: later, Zen 4 and later).
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')
_AMP_TYPES = ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper',
              'CPUAmpOptimWrapper')
_PLAIN_TYPES = (None, 'OptimWrapper', 'mmengine.OptimWrapper')
_DTYPE = {'bf16': 'bfloat16', 'fp16': 'float16'}


@dataclass(frozen=True)
class AmpChoice:
    """The precision of a run: ``mode`` is ``'bf16'``, ``'fp16'``,
    ``'off'`` or ``'config'`` (the config's own AMP wrapper kept);
    ``reason`` says why, for the log."""

    mode: str
    reason: str

    def message(self) -> str:
        """The log line."""
        what = {'off': 'fp32 (no autocast)',
                'config': "as the config's optim_wrapper says"}.get(
            self.mode, f'{self.mode} autocast')
        return f'mixed precision: {what}: {self.reason}'


def cpu_flags(path: str = '/proc/cpuinfo') -> set[str]:
    """The CPU feature flags the kernel reports (empty where unknown)."""
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if line.startswith(('flags', 'Features')):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_support() -> tuple[bool, str]:
    """Whether this CPU has native bf16 arithmetic, and the evidence."""
    found = sorted(set(BF16_CPU_FLAGS) & cpu_flags())
    capability = torch.backends.cpu.get_cpu_capability()
    if found:
        return True, f"CPU has {', '.join(found)} (torch kernels: {capability})"
    return False, (f'CPU has none of {", ".join(BF16_CPU_FLAGS)} (torch '
                   f'kernels: {capability}); bf16 would be emulated, slower '
                   'than fp32')


def gpu_bf16_support() -> tuple[bool, str]:
    """Whether the current CUDA device computes in bf16 natively."""
    name = torch.cuda.get_device_name()
    major, minor = torch.cuda.get_device_capability()
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return True, f'GPU {name} (compute {major}.{minor}) supports bf16'
    return False, (f'GPU {name} (compute {major}.{minor}) has no native '
                   'bf16')


def normalize_mode(amp: str | bool | None) -> str:
    """``amp`` as one of :data:`AMP_MODES`."""
    if amp is True:
        return 'bf16'
    if amp is False or amp is None:
        return 'off'
    mode = str(amp).lower()
    if mode not in AMP_MODES:
        raise ConfigError(f'amp must be one of {", ".join(AMP_MODES)} (or a '
                          f'bool), got {amp!r}; set it in the config or with '
                          'perception train --amp MODE')
    return mode


def choose_amp(amp: str | bool | None, wrapper_type: str | None = None,
               cuda: bool | None = None,
               cpu_check: Callable[[], tuple[bool, str]] | None = None,
               gpu_check: Callable[[], tuple[bool, str]] | None = None
               ) -> AmpChoice:
    """The precision for ``amp`` on this machine (``cpu_check`` /
    ``gpu_check`` default to :func:`cpu_bf16_support` /
    :func:`gpu_bf16_support`)."""
    mode = normalize_mode(amp)
    cpu_check = cpu_check or cpu_bf16_support
    gpu_check = gpu_check or gpu_bf16_support
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if mode != 'auto':
        return AmpChoice(mode, f'amp={mode!r} was asked for')
    if wrapper_type in _AMP_TYPES:
        return AmpChoice('config', f'the config asks for {wrapper_type}')
    native, why = gpu_check() if cuda else cpu_check()
    return AmpChoice('bf16' if native else 'off', f"amp='auto': {why}")


def apply_amp(wrapper: dict, choice: AmpChoice, cuda: bool | None = None
              ) -> tuple[dict, str | None]:
    """``wrapper`` (an ``optim_wrapper`` config) set to ``choice``; also a
    note when it cannot be (a wrapper type AMP does not know)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    wrapper = dict(wrapper)
    kind = wrapper.get('type')
    if choice.mode == 'config':
        pass
    elif kind not in _PLAIN_TYPES + _AMP_TYPES:
        return wrapper, (f'amp {choice.mode!r} not applied: optim_wrapper '
                         f'type {kind} is not an OptimWrapper AMP can wrap')
    elif choice.mode == 'off':
        if kind in _AMP_TYPES:
            wrapper['type'] = 'OptimWrapper'
            for key in ('dtype', 'loss_scale', 'use_fsdp'):
                wrapper.pop(key, None)
    else:
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper['dtype'] = _DTYPE[choice.mode]
        wrapper.setdefault('loss_scale', 'dynamic')
    if not cuda:
        wrapper = cpu_amp_optim_wrapper(wrapper)
    return wrapper, None
