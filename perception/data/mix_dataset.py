"""The dataset wrapper of multi-image augmentation (mmdet 3's
``MultiImageMixDataset``): the inner dataset loads samples, the wrapper's
pipeline transforms them, and before each transform that asks for more
samples (``get_indexes(dataset)``: :class:`~perception.data.mix.Mosaic`,
:class:`~perception.data.mix.MixUp`) it loads those into
``results['mix_results']``. ``skip_type_keys`` turns transforms off by type
name (:class:`~perception.engine.mix_switch.MixSwitchHook` does it for the
last epochs). Config: :mod:`perception.data.mix`.
"""
from __future__ import annotations

import collections.abc
from typing import Any, Sequence

from perception.registry import DATASETS, TRANSFORMS


@DATASETS.register_module()
class MultiImageMixDataset:
    """A dataset whose samples go through a pipeline that may mix in
    others: before each transform with a ``get_indexes(dataset)`` method
    (Mosaic, MixUp) the wrapper loads those samples from the inner dataset
    into ``results['mix_results']``.

    Args:
        dataset: the inner dataset or its config; its own pipeline loads
            (``LoadImage``, no ``PackInputs``).
        pipeline: transforms run on the loaded samples (ending with
            ``PackInputs``).
        skip_type_keys: transform type names to skip (the switch hook
            sets them, :meth:`update_skip_type_keys`).
        max_refetch: tries when a transform returns None.
    """

    def __init__(self, dataset: Any, pipeline: Sequence[dict | Any],
                 skip_type_keys: Sequence[str] | None = None,
                 max_refetch: int = 15) -> None:
        self.dataset = (DATASETS.build(dataset) if isinstance(dataset, dict)
                        else dataset)
        self.pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t
                         for t in pipeline]
        self.pipeline_types = [t['type'] if isinstance(t, dict)
                               else type(t).__name__ for t in pipeline]
        self.max_refetch = int(max_refetch)
        self._skip_type_keys: tuple[str, ...] = ()
        self.update_skip_type_keys(skip_type_keys or ())

    @property
    def metainfo(self) -> dict:
        """The inner dataset's metainfo (classes...)."""
        return dict(getattr(self.dataset, 'metainfo', {}) or {})

    @property
    def skip_type_keys(self) -> tuple[str, ...]:
        """Transform type names now skipped."""
        return self._skip_type_keys

    @property
    def bad_samples(self) -> list[str]:
        """The inner dataset's skipped samples."""
        return getattr(self.dataset, 'bad_samples', [])

    def update_skip_type_keys(self, skip_type_keys: Sequence[str]) -> None:
        """Skip the transforms of these type names from now on (in this
        process: see :class:`~perception.engine.mix_switch.MixSwitchHook`
        for data loader workers)."""
        if isinstance(skip_type_keys, str) or not all(
                isinstance(k, str) for k in skip_type_keys):
            raise ValueError('skip_type_keys must be a list of transform '
                             f'type names, got {skip_type_keys!r}')
        self._skip_type_keys = tuple(skip_type_keys)

    def full_init(self) -> None:
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(idx)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> Any:
        results = self.dataset[idx]
        for transform, name in zip(self.pipeline, self.pipeline_types):
            if name in self._skip_type_keys:
                continue
            for _ in range(self.max_refetch):
                trial = dict(results)
                if hasattr(transform, 'get_indexes'):
                    indexes = transform.get_indexes(self.dataset)
                    if not isinstance(indexes, collections.abc.Sequence):
                        indexes = [indexes]
                    trial['mix_results'] = [self.dataset[i] for i in indexes]
                updated = transform(trial)
                if updated is not None:
                    results = updated
                    break
            else:
                raise RuntimeError(
                    f'{name} returned None {self.max_refetch} times for '
                    f'sample {idx}; check its settings')
            results.pop('mix_results', None)
        return results

    def __repr__(self) -> str:
        return (f'MultiImageMixDataset(dataset={type(self.dataset).__name__}'
                f', {len(self)} samples, pipeline={self.pipeline_types}, '
                f'skip_type_keys={list(self._skip_type_keys)})')
