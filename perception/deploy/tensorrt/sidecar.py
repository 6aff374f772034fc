"""The engine sidecar ``engine.json``: what an engine was built from and
for. An engine only runs on the TensorRT version and GPU (compute
capability) it was built with, and only means something for the ONNX it
came from; :func:`check_sidecar` refuses a mismatch, naming what differs
and the command that rebuilds."""
from __future__ import annotations

import json
import os
from typing import Any

from perception.deploy.tensorrt import SIDECAR_FILE, TensorRTError

__all__ = ['EngineMismatch', 'device_facts', 'write_sidecar', 'read_sidecar',
           'check_sidecar', 'rebuild_command', 'MATCH_KEYS']

#: fields that must be equal between the sidecar and this device/bundle.
MATCH_KEYS = ('onnx_sha256', 'tensorrt_version', 'gpu_name',
              'compute_capability')


class EngineMismatch(TensorRTError):
    """An engine built for another ONNX, TensorRT version or GPU."""


def device_facts(trt: Any) -> dict:
    """TensorRT version, GPU name and compute capability here (torch's
    CUDA view of device 0)."""
    import torch
    facts = dict(tensorrt_version=str(trt.__version__), gpu_name=None,
                 compute_capability=None)
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        facts.update(gpu_name=torch.cuda.get_device_name(0),
                     compute_capability=f'{major}.{minor}')
    return facts


def rebuild_command(bundle_dir: str, sidecar: dict | None = None) -> str:
    """The command that rebuilds the engine of ``bundle_dir`` here."""
    extra = ''
    if sidecar:
        if sidecar.get('dla_core') is not None:
            extra += f" --dla-core {sidecar['dla_core']}"
        if sidecar.get('flag_precision'):
            extra += f" --flag-precision {sidecar['flag_precision']}"
    return f'perception deploy build {bundle_dir}{extra}'


def write_sidecar(path: str, record: dict) -> str:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(record, f, indent=2)
        f.write('\n')
    return path


def read_sidecar(folder: str) -> dict:
    path = os.path.join(folder, SIDECAR_FILE)
    if not os.path.isfile(path):
        raise EngineMismatch(f"'{path}' not found: the engine's record is "
                             f'missing; rebuild: {rebuild_command(folder)}')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise EngineMismatch(f"'{path}' is not valid JSON ({exc}); rebuild: "
                             f'{rebuild_command(folder)}') from None


def check_sidecar(sidecar: dict, current: dict, bundle_dir: str) -> None:
    """Raise :class:`EngineMismatch` naming each field of
    :data:`MATCH_KEYS` that differs between ``sidecar`` (what the engine
    was built with) and ``current`` (this device and bundle)."""
    diffs = [f'{key} {sidecar.get(key)!r} (engine) vs {current.get(key)!r} '
             '(here)' for key in MATCH_KEYS
             if key in current and sidecar.get(key) != current.get(key)]
    if diffs:
        raise EngineMismatch(
            f"'{os.path.join(bundle_dir, SIDECAR_FILE)}': the engine was built "
            f'for something else: {"; ".join(diffs)}; rebuild it here: '
            f'{rebuild_command(bundle_dir, sidecar)}')
