"""Engine: safe checkpoint I/O, run hooks, AMP choice and CPU AMP, the
compiled step with its fallback, launcher fixes and the
runner building behind ``perception train`` / ``perception test``.

Importing it registers the hooks, optimizer wrappers and the layer-decay
optimizer constructor; it patches nothing.
:func:`install` (called by every run :mod:`perception.engine.launch` builds)
routes mmengine's checkpoint loading through the safe loader, makes its
checkpoint writes atomic and makes mmengine's Runner work on newer Pythons.
"""
from perception.engine import _compat, dataloader_benchmark, detector_benchmark, yolo_baseline  # noqa: F401
from perception.engine.checkpoint import (
    UnsafeCheckpointError,
    install_safe_loading,
    load_checkpoint_file,
    trust_checkpoints,
)
from perception.engine.compile import CompileHook
from perception.engine.data_guard import BadSampleHook
from perception.engine.fsdp import FullStateDictHook, FullyShardedWrapper
from perception.engine.hooks import CheckpointStateHook, PretrainedCfgHook, RandomStateHook
from perception.engine.mix_switch import MixSwitchHook
from perception.engine.optim import CPUAmpOptimWrapper
from perception.engine.optim_constructors import LayerDecayOptimWrapperConstructor
from perception.engine.outputs import DumpPredictionsJSON
from perception.engine.safe_save import (
    CheckpointSaveError,
    find_resumable_checkpoint,
    install_safe_saving,
)

__all__ = [
    'install', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'trust_checkpoints', 'CheckpointStateHook', 'PretrainedCfgHook',
    'CPUAmpOptimWrapper', 'DumpPredictionsJSON', 'FullyShardedWrapper',
    'FullStateDictHook', 'MixSwitchHook',
    'LayerDecayOptimWrapperConstructor', 'RandomStateHook',
    'CheckpointSaveError', 'find_resumable_checkpoint', 'CompileHook',
    'BadSampleHook'
]


def install() -> None:
    """Install perception's mmengine patches, once (idempotent): the safe
    checkpoint loader, atomic checkpoint saving
    (:mod:`perception.engine.safe_save`) and the Runner's environment report
    on Pythons without distutils."""
    _compat.install()
    install_safe_loading()
    install_safe_saving()
