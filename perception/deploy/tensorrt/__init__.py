"""TensorRT engines from deploy bundles, for TensorRT 10.x (JetPack 6,
10.3) and 11.x (JetPack 7, strongly typed only).

- :mod:`.compat`: the one place that knows the version differences
  (network flags, precision flags, memory pools, DLA) and the logger whose
  errors are fatal;
- :mod:`.builder`: ONNX -> engine (optimization profiles from the
  manifest, persisted timing cache, workspace limit, DLA with GPU
  fallback), the ``engine.json`` sidecar and the equivalent ``trtexec``
  command;
- :mod:`.sidecar`: what an engine was built from and for; loading on
  another device, TensorRT or ONNX refuses with what differs;
- :mod:`.runtime`: the ``tensorrt`` backend (named tensors,
  ``execute_async_v3`` on torch CUDA buffers).

``tensorrt`` is imported lazily (:func:`import_tensorrt`): this package
imports on any machine; only building or running needs TensorRT.
"""
from __future__ import annotations

from typing import Any

from perception.errors import UserError

__all__ = ['TensorRTError', 'TensorRTMissing', 'import_tensorrt',
           'INSTALL_HINT', 'ENGINE_FILE', 'SIDECAR_FILE']

ENGINE_FILE = 'model.engine'
SIDECAR_FILE = 'engine.json'
INSTALL_HINT = ('on a Jetson it comes with JetPack (sudo apt install '
                'nvidia-tensorrt; python3-libnvinfer for the Python API); on a '
                'desktop GPU: pip install tensorrt --extra-index-url '
                'https://pypi.nvidia.com')


class TensorRTError(UserError, RuntimeError):
    """TensorRT refused to parse, build or run (the message holds the
    errors TensorRT logged), or an engine does not match this device."""


class TensorRTMissing(TensorRTError):
    """The ``tensorrt`` Python package is not importable here."""


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`TensorRTMissing` in one line."""
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTMissing(f'TensorRT is not installed here ({exc}); '
                              f'{INSTALL_HINT}') from None
    except Exception as exc:  # a broken install: libnvinfer not found...
        raise TensorRTMissing(f'TensorRT does not import here '
                              f'({type(exc).__name__}: {exc}); '
                              f'{INSTALL_HINT}') from None
    return tensorrt
