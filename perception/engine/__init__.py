"""Engine: safe checkpoint I/O, run hooks, CPU AMP, launcher fixes and the
runner building behind ``perception train`` / ``perception test``.

Importing it registers the hooks and optimizer wrappers and routes
mmengine's checkpoint loading through :func:`load_checkpoint_file`.
"""
from perception.engine import _compat  # noqa: F401  (mmengine fixes)
from perception.engine.checkpoint import (UnsafeCheckpointError,
                                          load_checkpoint_file,
                                          trust_checkpoints)
from perception.engine.hooks import (CheckpointStateHook, PretrainedCfgHook,
                                     model_pretrained_cfg)
from perception.engine.optim import CPUAmpOptimWrapper
from perception.engine.outputs import (DumpPredictionsJSON,
                                       PredictionPicturesHook)

__all__ = [
    'UnsafeCheckpointError', 'load_checkpoint_file', 'trust_checkpoints',
    'CheckpointStateHook', 'PretrainedCfgHook', 'model_pretrained_cfg',
    'CPUAmpOptimWrapper', 'DumpPredictionsJSON', 'PredictionPicturesHook'
]
