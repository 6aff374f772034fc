"""Hooks every run built by :mod:`perception.engine.launch` gets. Each does
one thing."""
from __future__ import annotations

import json
import random
import warnings

import numpy as np
import torch
from mmengine.hooks import Hook

from perception.data.pretrained_cfg import PretrainedCfg, config_pipeline
from perception.engine.checkpoint import decode_state, encode_state, unsafe_entries
from perception.engine.config import ConfigError
from perception.registry import HOOKS


@HOOKS.register_module()
class CheckpointStateHook(Hook):
    """Store runner and message-hub state (``HistoryBuffer``, numpy values)
    as tensors and plain containers, so the checkpoint loads with
    ``torch.load(weights_only=True)``; restore it after loading.

    Runs last before saving (other hooks add their state first).
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in list(checkpoint):
            checkpoint[key] = encode_state(checkpoint[key])
        left = unsafe_entries(checkpoint)
        if left:
            warnings.warn(
                'these checkpoint entries are not tensors or plain '
                f"containers: {', '.join(left)}; loading the checkpoint "
                'will need --trust-checkpoint. Store them as tensors, '
                'numbers, strings, lists or dicts.')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # perception's loader already decodes; this covers checkpoints
        # handed to the runner by other means.
        decode_state(checkpoint)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Store the random generators' states (Python, NumPy, torch CPU and
    CUDA) in ``checkpoint['rng_state']`` and restore them on ``--resume``,
    so a resumed run draws the same augmentations (and dropout) as one that
    was never stopped: mmengine only re-seeds, which replays the first
    epoch's draws."""

    priority = 'NORMAL'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(python=random.getstate(), numpy=np.random.get_state(),
                     torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if not state or not getattr(runner, '_resume', False):
            return  # load_from (fine-tuning) keeps the run's own seed
        state = decode_state(state)
        python = state['python']
        random.setstate((python[0], tuple(python[1]), python[2]))
        np.random.set_state(tuple(state['numpy']))
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class PretrainedCfgHook(Hook):
    """Store the model's :class:`~perception.data.PretrainedCfg`
    (architecture, input size and resize policy, channels and their meaning,
    mean/std, CT windows and slices, class names) in
    ``checkpoint['meta']['pretrained_cfg']`` so fine-tuning, export and
    inference never guess it. Built from the model, its data preprocessor,
    the val (or test) pipeline and the training dataset."""

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        """A model that names its classes must name the dataset's."""
        model = getattr(runner.model, 'module', runner.model)
        names = list(getattr(model, 'class_names', None) or [])
        classes = list((getattr(_built_dataset(runner), 'metainfo', None)
                        or {}).get('classes') or [])
        if names and classes and names != classes:
            raise ConfigError(
                f'model.class_names ({", ".join(names)}) differ from the '
                f'training dataset\'s classes ({", ".join(classes)}); set '
                'model.class_names to the class map\'s classes, in order')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        record = run_pretrained_cfg(runner)
        try:
            record = json.loads(json.dumps(record.to_dict()))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f'the pretrained_cfg of {type(runner.model).__name__} must be '
                f'JSON-able (numbers, strings, lists): {exc}') from exc
        checkpoint.setdefault('meta', {})['pretrained_cfg'] = record


def run_pretrained_cfg(runner) -> PretrainedCfg:
    """The :class:`PretrainedCfg` of a run's model and data."""
    cfg = getattr(runner, 'cfg', None) or {}
    pipeline = config_pipeline(
        cfg, ('val_dataloader', 'test_dataloader', 'train_dataloader'))
    dataset = _built_dataset(runner)
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes') or ()
    return PretrainedCfg.from_model(
        runner.model, pipeline, class_names=tuple(classes),
        slice_offsets=tuple(getattr(dataset, 'slice_offsets', ()) or ()))


def _built_dataset(runner):
    """The training dataset if the runner has built its loop (never
    builds one)."""
    loop = getattr(runner, '_train_loop', None)
    loader = getattr(loop, 'dataloader', None)
    return getattr(loader, 'dataset', None)


@HOOKS.register_module()
class TimeBudgetHook(Hook):
    """Stop training once ``minutes`` of wall-clock training time have
    passed (checked after every iteration; the loop ends after the current
    epoch for epoch-based loops, at once for iteration-based ones), and save
    a checkpoint there, so runs compared at equal budgets really had them.

    Args:
        minutes: the budget; the time of validation counts too.
    """

    priority = 'LOW'

    def __init__(self, minutes: float) -> None:
        if minutes <= 0:
            raise ConfigError(f'TimeBudgetHook: minutes must be > 0, got '
                              f'{minutes}')
        self.minutes = float(minutes)
        self._start: float | None = None
        self._stopped = False
        self._saved = False

    def before_train(self, runner) -> None:
        import time
        self._start = time.monotonic()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        import time
        if self._stopped or self._start is None:
            return
        elapsed = (time.monotonic() - self._start) / 60.0
        if elapsed < self.minutes:
            return
        self._stopped = True
        runner.train_loop.stop_training = True
        runner.logger.info(
            f'TimeBudgetHook: {elapsed:.1f} of {self.minutes:g} minutes used '
            f'at iteration {runner.iter + 1}; stopping (epoch-based loops '
            'finish the epoch)')

    def after_train_epoch(self, runner) -> None:
        from mmengine.runner import IterBasedTrainLoop
        # mmengine's iteration loop calls this once at its end too: that
        # run is saved by iteration in after_train
        if self._stopped and not isinstance(runner.train_loop,
                                            IterBasedTrainLoop):
            # the epoch just finished, counted as CheckpointHook does
            self._save(runner, f'budget_epoch_{runner.epoch + 1}.pth')

    def after_train(self, runner) -> None:
        if self._stopped and not self._saved:  # iteration-based loops
            self._save(runner, f'budget_iter_{runner.iter}.pth')

    def _save(self, runner, name: str) -> None:
        import os

        from perception.engine.safe_save import atomic_write
        runner.save_checkpoint(runner.work_dir, name, by_epoch=False)
        atomic_write(os.path.join(runner.work_dir, 'last_checkpoint'),
                     os.path.join(runner.work_dir, name))
        self._saved = True
