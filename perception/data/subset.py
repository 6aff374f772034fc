"""``LabelSubsetDataset``: train on a seeded share of a dataset's labelled
samples (label-efficiency studies): a fraction of the images, or all the
samples of a number of groups (patients for CT, so that no patient is split
between labelled and unlabelled, and no patient of another split enters).

The choice is a seeded permutation of the sorted image positions / group
keys, truncated: the same seed gives the same subset, and with one seed a
smaller share is contained in a larger one (nested subsets, so a curve over
fractions compares like with like). Example::

    train_dataloader = dict(dataset=dict(
        type='LabelSubsetDataset', fraction=0.1, seed=0,
        dataset=dict(type='ConcatDataset', datasets=[...])))
    # CT: 4 training patients (never fewer than 2)
    dict(type='LabelSubsetDataset', num_groups=4, group_key='patient',
         dataset=dict(type='LesionDetectionDataset', split='train', ...))
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from perception.registry import DATASETS

#: a patient-level subset below this many patients is refused
MIN_GROUPS = 2


class SubsetError(ValueError):
    """A label subset cannot be drawn as asked; the message says why."""


def select_images(num_samples: int, fraction: float, seed: int = 0
                  ) -> np.ndarray:
    """Sorted positions of ``ceil(fraction * num_samples)`` samples (at
    least one), drawn by a seeded permutation."""
    if not 0.0 < fraction <= 1.0:
        raise SubsetError(f'LabelSubsetDataset: fraction must be in (0, 1], '
                          f'got {fraction}')
    if num_samples < 1:
        raise SubsetError('LabelSubsetDataset: the inner dataset is empty')
    count = min(max(math.ceil(fraction * num_samples - 1e-9), 1), num_samples)
    order = np.random.default_rng(seed).permutation(num_samples)
    return np.sort(order[:count])


def select_groups(groups: Sequence[str], num_groups: int | None, seed: int = 0,
                  min_groups: int = MIN_GROUPS) -> tuple[np.ndarray, list[str]]:
    """Positions of the samples of ``num_groups`` groups (None: all) and the
    chosen group keys, sorted; the groups are a seeded permutation of the
    sorted distinct keys."""
    keys = sorted(set(groups))
    if num_groups is None:
        num_groups = len(keys)
    if num_groups < min_groups:
        raise SubsetError(f'LabelSubsetDataset: num_groups={num_groups}; at '
                          f'least {min_groups} groups (patients) are needed')
    if num_groups > len(keys):
        raise SubsetError(f'LabelSubsetDataset: num_groups={num_groups} but '
                          f'the dataset has {len(keys)} groups; ask for at '
                          f'most {len(keys)}')
    order = np.random.default_rng(seed).permutation(len(keys))
    chosen = sorted(keys[i] for i in order[:num_groups])
    keep = set(chosen)
    return (np.array([i for i, g in enumerate(groups) if g in keep], np.int64),
            chosen)


@DATASETS.register_module()
class LabelSubsetDataset:
    """The samples of ``dataset`` that a label budget allows.

    Args:
        dataset: the inner dataset or its config (any dataset with
            ``__len__``/``__getitem__``; ``get_data_info`` for groups).
        fraction: image-level share in (0, 1] (``ceil``, at least one).
        num_groups: group-level: this many groups (None with ``group_key``:
            all of them), never fewer than 2.
        group_key: the data-info field naming a sample's group
            (``'patient'`` for the CT datasets); set it for group subsets.
        seed: the draw (the same seed, the same subset).
        lazy_init: draw on first use instead of at construction.
        max_refetch: draws (within the subset) when a sample is bad.
    """

    def __init__(self, dataset: Any, fraction: float | None = None,
                 num_groups: int | None = None, group_key: str | None = None,
                 seed: int = 0, lazy_init: bool = False,
                 max_refetch: int = 20) -> None:
        if fraction is not None and (num_groups is not None or group_key):
            raise SubsetError('LabelSubsetDataset: give fraction (images) or '
                              'num_groups with group_key (patients), not both')
        if num_groups is not None and not group_key:
            raise SubsetError('LabelSubsetDataset: num_groups needs group_key '
                              "(e.g. group_key='patient')")
        self.dataset = (DATASETS.build(dataset) if isinstance(dataset, dict)
                        else dataset)
        self.fraction = 1.0 if fraction is None and not group_key else fraction
        self.num_groups, self.group_key = num_groups, group_key
        self.seed, self.max_refetch = int(seed), int(max_refetch)
        self.indices: np.ndarray | None = None
        self.groups: list[str] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Draw the subset (builds the inner dataset's data list)."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        n = len(self.dataset)
        if self.group_key:
            keys = []
            for i in range(n):
                info = self.dataset.get_data_info(i)
                if self.group_key not in info:
                    raise SubsetError(
                        f'LabelSubsetDataset: sample {i} of '
                        f'{type(self.dataset).__name__} has no '
                        f"'{self.group_key}' field; set group_key to a field "
                        'of its data info')
                keys.append(str(info[self.group_key]))
            self.indices, self.groups = select_groups(keys, self.num_groups,
                                                      self.seed)
        else:
            self.indices = select_images(n, self.fraction, self.seed)
        self._fully_initialized = True

    @property
    def metainfo(self) -> dict:
        """The inner dataset's metainfo (classes...)."""
        return dict(getattr(self.dataset, 'metainfo', {}) or {})

    @property
    def bad_samples(self) -> list[str]:
        """The inner dataset's skipped samples."""
        return getattr(self.dataset, 'bad_samples', [])

    def _inner(self, idx: int) -> int:
        self.full_init()
        return int(self.indices[idx])

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(self._inner(idx))

    def __len__(self) -> int:
        self.full_init()
        return len(self.indices)

    def __getitem__(self, idx: int) -> Any:
        # a skipped bad sample is replaced by another sample OF THE SUBSET
        # (the inner dataset's own refetch would draw from all its labels)
        rng = np.random.default_rng([self.seed, int(idx)])
        for _ in range(self.max_refetch + 1):
            data = self._load(self._inner(idx))
            if data is not None:
                return data
            idx = int(rng.integers(len(self)))
        raise SubsetError(f'LabelSubsetDataset: no usable sample in '
                          f'{self.max_refetch} draws from its {len(self)} '
                          'samples; check the bad-sample log')

    def _load(self, index: int) -> Any:
        """One sample, None where the inner dataset skipped it as bad."""
        dataset = self.dataset
        if hasattr(dataset, 'datasets') and hasattr(dataset,
                                                   '_get_ori_dataset_idx'):
            member, index = dataset._get_ori_dataset_idx(index)
            dataset = dataset.datasets[member]
        prepare = getattr(dataset, 'prepare_data', None)
        if prepare is None or getattr(dataset, 'test_mode', False):
            return dataset[index]
        return prepare(index)

    def __repr__(self) -> str:
        what = (f'{len(self.groups)} {self.group_key}s' if self.group_key
                else f'fraction={self.fraction}')
        return (f'LabelSubsetDataset({type(self.dataset).__name__}, {what}, '
                f'seed={self.seed}, {len(self)} samples)')
