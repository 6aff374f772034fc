"""Base dataset: mmengine ``BaseDataset`` with a bad-sample policy.

``on_bad_sample='error'`` stops with the reader's message (file, field,
why); ``'skip'`` logs it, counts it in ``bad_samples`` and draws another
sample, so a long run survives a corrupt file and says so.
"""
from __future__ import annotations

from typing import Any

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from perception.errors import UserError
from perception.registry import TRANSFORMS


class BadSampleError(UserError, ValueError):
    """A sample cannot be used; the message names the file, field and why."""


class PerceptionDataset(BaseDataset):
    """``BaseDataset`` with ``on_bad_sample`` ('error' or 'skip')."""

    def __init__(self, *args, on_bad_sample: str = 'error', **kwargs) -> None:
        if on_bad_sample not in ('error', 'skip'):
            raise ValueError(f"on_bad_sample must be 'error' or 'skip', got "
                             f'{on_bad_sample!r}')
        self.on_bad_sample = on_bad_sample
        self.bad_samples: list[str] = []
        # Build transforms in perception's scope (mmengine's Compose would
        # look them up in its own root registry), as mmpretrain does.
        pipeline = kwargs.pop('pipeline', [])
        kwargs['pipeline'] = [TRANSFORMS.build(t) if isinstance(t, dict)
                              else t for t in pipeline]
        super().__init__(*args, **kwargs)

    def prepare_data(self, idx: int) -> Any:
        try:
            return super().prepare_data(idx)
        except BadSampleError as exc:
            if self.on_bad_sample == 'error' or self.test_mode:
                raise
            self.bad_samples.append(str(exc))
            print_log(f'skipping bad sample #{len(self.bad_samples)}: {exc}',
                      logger='current', level=30)
            return None  # BaseDataset draws another index in training
