"""``LesionBalancedSampler``: training batches with a set share of slices
that show a lesion.

In a chest CT a few slices in a hundred cross a nodule; a uniform sampler
gives the detector almost only empty slices. This sampler draws each index
from the slices with a lesion with probability ``positive_fraction`` and
from the others otherwise (with replacement, uniform within each group),
so empty slices still teach what is *not* a lesion.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from perception.registry import DATA_SAMPLERS


def lesion_flags(dataset) -> np.ndarray:
    """Per sample: whether it shows a lesion that is not ignored (the
    ``has_lesion`` field of :class:`LesionDetectionDataset`, else its boxes).
    Read from the data list (no pixel is loaded)."""
    if hasattr(dataset, 'datasets'):  # ConcatDataset
        return np.concatenate([lesion_flags(d) for d in dataset.datasets])
    if not getattr(dataset, '_fully_initialized', True):
        dataset.full_init()
    flags = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if 'has_lesion' in info:
            flags.append(bool(info['has_lesion']))
        else:
            ignore = np.asarray(info.get('gt_ignore_flags', []), bool)
            flags.append(bool(len(ignore) and (~ignore).any()))
    return np.asarray(flags, bool)


@DATA_SAMPLERS.register_module()
class LesionBalancedSampler(Sampler):
    """Indices with about ``positive_fraction`` of slices showing a lesion.

    Args:
        dataset: a :class:`LesionDetectionDataset` (or a ConcatDataset of
            them).
        positive_fraction: share of drawn samples that show a lesion (0.5:
            half); where a group is empty, the other one is used.
        num_samples: indices per epoch and rank (default: the dataset's
            length divided among ranks).
        seed: random seed (synchronised across ranks; each rank draws its
            own stream); ``DistSamplerSeedHook`` sets the epoch.
    """

    def __init__(self, dataset, positive_fraction: float = 0.5,
                 num_samples: int | None = None, seed: int | None = None,
                 shuffle: bool = True) -> None:
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError('LesionBalancedSampler: positive_fraction must '
                             f'be in [0, 1], got {positive_fraction}')
        self.dataset = dataset
        self.rank, self.world_size = get_dist_info()
        self.flags = lesion_flags(dataset)
        self.positives = np.flatnonzero(self.flags)
        self.negatives = np.flatnonzero(~self.flags)
        if not len(self.flags):
            raise ValueError('LesionBalancedSampler: the dataset is empty')
        self.positive_fraction = positive_fraction
        self.num_samples = int(num_samples or -(-len(self.flags) //
                                                self.world_size))
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        frac = self.positive_fraction
        if not len(self.positives):
            frac = 0.0
        elif not len(self.negatives):
            frac = 1.0
        positive = rng.random(self.num_samples) < frac
        out = np.empty(self.num_samples, np.int64)
        n_pos = int(positive.sum())
        if n_pos:
            out[positive] = rng.choice(self.positives, n_pos)
        if self.num_samples - n_pos:
            out[~positive] = rng.choice(self.negatives,
                                        self.num_samples - n_pos)
        return iter(torch.from_numpy(out).tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
