"""Switch multi-image augmentation off for the last epochs of training.

YOLOX (Ge et al., 2021) trains its last 15 epochs without Mosaic and
MixUp, so the detector finishes on images that look like the ones it will
see; mmdet's ``YOLOXModeSwitchHook`` and RTMDet's ``PipelineSwitchHook``
do it. Config::

    custom_hooks = [dict(type='MixSwitchHook', num_last_epochs=15,
                         skip_type_keys=('Mosaic', 'MixUp'))]

The training dataset must be a :class:`~perception.data.MultiImageMixDataset`
(or wrap one through ``.dataset``).

Data loader workers hold their own copy of the dataset. Without
``persistent_workers`` they are started anew every epoch, from the updated
dataset. With ``persistent_workers=True`` they would keep mixing, so the
hook drops the loader's worker iterator when it switches: the next epoch
starts fresh workers (once, a second or so) that see the new setting.
"""
from __future__ import annotations

from typing import Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log

from perception.engine.config import ConfigError
from perception.registry import HOOKS


def find_mix_dataset(dataset):
    """The :class:`~perception.data.MultiImageMixDataset` in ``dataset``
    (itself, or reached through ``.dataset`` of wrappers), or None."""
    seen = 0
    while dataset is not None and seen < 8:
        if hasattr(dataset, 'update_skip_type_keys'):
            return dataset
        dataset, seen = getattr(dataset, 'dataset', None), seen + 1
    return None


@HOOKS.register_module()
class MixSwitchHook(Hook):
    """From epoch ``max_epochs - num_last_epochs`` on, skip the transforms
    named in ``skip_type_keys`` (type names) in the training dataset's
    mixing pipeline, and make data loader workers see it.

    Args:
        num_last_epochs: epochs at the end trained without them.
        skip_type_keys: transform type names to skip.
    """

    priority = 'NORMAL'

    def __init__(self, num_last_epochs: int = 15,
                 skip_type_keys: Sequence[str] = ('Mosaic', 'MixUp')
                 ) -> None:
        if int(num_last_epochs) < 0:
            raise ConfigError('MixSwitchHook: num_last_epochs must be >= 0, '
                              f'got {num_last_epochs}')
        self.num_last_epochs = int(num_last_epochs)
        self.skip_type_keys = tuple(skip_type_keys)
        self._switched = False

    def switch_epoch(self, max_epochs: int) -> int:
        """First epoch (0-based) trained without the skipped transforms."""
        return max(int(max_epochs) - self.num_last_epochs, 0)

    def before_train_epoch(self, runner) -> None:
        if self._switched or self.num_last_epochs == 0:
            return
        if runner.epoch < self.switch_epoch(runner.max_epochs):
            return
        loader = runner.train_loop.dataloader
        dataset = find_mix_dataset(getattr(loader, 'dataset', None))
        if dataset is None:
            raise ConfigError(
                'MixSwitchHook: the training dataset is '
                f'{type(getattr(loader, "dataset", None)).__name__}, not a '
                "MultiImageMixDataset; wrap it: dataset=dict(type="
                "'MultiImageMixDataset', dataset=..., pipeline=[...])")
        dataset.update_skip_type_keys(
            tuple(dataset.skip_type_keys) + tuple(
                k for k in self.skip_type_keys
                if k not in dataset.skip_type_keys))
        restarted = restart_workers(loader)
        self._switched = True
        print_log(f'MixSwitchHook: epoch {runner.epoch + 1} of '
                  f'{runner.max_epochs} on without '
                  f'{", ".join(self.skip_type_keys)}'
                  + (' (persistent workers restarted)' if restarted else ''),
                  logger='current')


def restart_workers(loader) -> bool:
    """Drop a persistent-worker loader's live iterator so its next epoch
    starts workers from the dataset as it is now; True if one was dropped.
    """
    iterator = getattr(loader, '_iterator', None)
    if not getattr(loader, 'persistent_workers', False) or iterator is None:
        return False
    shutdown = getattr(iterator, '_shutdown_workers', None)
    if shutdown is not None:
        shutdown()
    loader._iterator = None
    return True
