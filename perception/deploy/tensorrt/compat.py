"""What differs between TensorRT 10.x and 11.x, in one place.

- 10.x (JetPack 6 ships 10.3): networks are explicit-batch by default
  (``EXPLICIT_BATCH`` is deprecated); ``STRONGLY_TYPED`` exists; the FP16 /
  INT8 builder flags exist and apply to an FP32 ONNX ("weakly typed": the
  builder may pick lower precision).
- 11.x: strongly typed only: the FP16 / INT8 flags and the INT8 calibrator
  are gone; precision must be explicit in the ONNX (Casts, Q/DQ), which is
  what ``perception export --fp16 / --int8`` writes.

So an explicit bundle (manifest ``precision`` fp16 / int8, or fp32 built
as FP32) is built strongly typed on both; builder flags are used only on
10.x when asked for (``flag_precision``) on an FP32 ONNX.
"""
from __future__ import annotations

from typing import Any

from perception.deploy.tensorrt import TensorRTError

__all__ = ['version_tuple', 'major', 'network_flags', 'precision_flags',
           'set_workspace', 'use_dla', 'make_logger', 'fatal_errors']


def version_tuple(trt: Any) -> tuple[int, ...]:
    parts = []
    for part in str(getattr(trt, '__version__', '0')).split('.')[:3]:
        digits = ''.join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def major(trt: Any) -> int:
    return version_tuple(trt)[0]


def _check_supported(trt: Any) -> None:
    if major(trt) not in (10, 11):
        raise TensorRTError(
            f'TensorRT {trt.__version__} is not supported (10.x or 11.x: '
            'JetPack 6 ships 10.3, JetPack 7 ships 11); upgrade JetPack or '
            'install TensorRT 10/11')


def network_flags(trt: Any, strongly_typed: bool) -> int:
    """Flags of ``builder.create_network`` for this version."""
    _check_supported(trt)
    flags = 0
    if strongly_typed or major(trt) >= 11:
        flag = getattr(trt.NetworkDefinitionCreationFlag, 'STRONGLY_TYPED',
                       None)
        if flag is not None:  # 11.x may make it the only mode, flag or not
            flags |= 1 << int(flag)
    return flags


def precision_flags(trt: Any, config: Any, flag_precision: str | None
                    ) -> list[str]:
    """Set builder precision flags for a weakly typed build (10.x only);
    returns the flags set."""
    if not flag_precision or flag_precision == 'fp32':
        return []
    if major(trt) >= 11 or not hasattr(trt.BuilderFlag, 'FP16'):
        raise TensorRTError(
            f'TensorRT {trt.__version__} builds strongly typed networks only: '
            f'there is no {flag_precision.upper()} builder flag; make the '
            f'precision explicit in the ONNX: perception export ... '
            f'--{flag_precision}')
    if flag_precision != 'fp16':
        # INT8 by flag needs a calibrator: Q/DQ in the graph instead
        raise TensorRTError(f'--flag-precision {flag_precision}: only fp16 '
                            'is set by flag (10.x); for INT8 export --int8 '
                            '(a Q/DQ ONNX)')
    config.set_flag(trt.BuilderFlag.FP16)
    return ['FP16']


def set_workspace(trt: Any, config: Any, size: int) -> None:
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(size))


def use_dla(trt: Any, builder: Any, config: Any, core: int) -> None:
    """Layers on DLA core ``core``, falling back to the GPU where DLA
    cannot run them."""
    cores = int(getattr(builder, 'num_DLA_cores', 0) or 0)
    if core >= cores:
        raise TensorRTError(
            f'--dla-core {core}: this device has {cores} DLA core(s) '
            '(Orin AGX/NX have 2, Orin Nano and discrete GPUs none); drop '
            '--dla-core')
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(core)
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def make_logger(trt: Any, verbose: bool = False) -> Any:
    """A ``trt.ILogger`` that keeps every ERROR / INTERNAL_ERROR message
    (``logger.errors``) and warnings (``logger.warnings``); see
    :func:`fatal_errors`."""
    severity = trt.ILogger.Severity

    class CollectingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, level: Any, msg: str) -> None:
            if level in (severity.INTERNAL_ERROR, severity.ERROR):
                self.errors.append(str(msg))
            elif level == severity.WARNING:
                self.warnings.append(str(msg))
            elif verbose:
                print(f'[TensorRT] {msg}')

    return CollectingLogger()


def fatal_errors(logger: Any, stage: str) -> None:
    """Raise :class:`TensorRTError` if TensorRT logged errors during
    ``stage`` (it often only logs them and returns a result)."""
    if logger.errors:
        shown = '; '.join(e.strip().splitlines()[0] for e in logger.errors[:3])
        more = f' (+{len(logger.errors) - 3} more)' if len(
            logger.errors) > 3 else ''
        logger.errors.clear()
        raise TensorRTError(f'TensorRT {stage} logged errors: {shown}{more}')
