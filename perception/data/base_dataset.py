"""Base dataset: mmengine ``BaseDataset`` with the bad-input policy every
perception dataset shares.

``on_bad_sample='error'`` stops at the first sample a reader or transform
cannot use, with the reader's message (file, record, why). ``'skip'``
records it instead (:attr:`PerceptionDataset.bad_records`, messages in
``bad_samples``), logs each one once and, in training, draws another
sample, so a long run survives a corrupt file and says so; at most
``max_bad_fraction`` of the samples may be bad (at load, and per epoch in
training), past that the run stops with a summary. Test-time datasets
never skip at read time (a metric over fewer samples would mislead).

A dataset left with no samples (nothing found, or everything skipped) is a
one-line :class:`EmptyDatasetError` naming the data root and the counts.
In a run, :class:`perception.engine.data_guard.BadSampleHook` writes every
skip to ``bad_samples.jsonl`` in the work dir; the sample each dataloader
worker is reading is tracked (:mod:`perception.data.inflight`) so a worker
that crashes or hangs is reported with that sample's file.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from perception.data.inflight import InFlight
from perception.errors import UserError
from perception.registry import TRANSFORMS


def _unwrap_worker_message(message: str) -> str:
    """torch re-raises a worker's exception with its traceback as the
    message; keep the one line the worker raised, and say where."""
    if 'Original Traceback' not in message:
        return message
    first = message.splitlines()[0]
    last = [line for line in message.splitlines() if line.strip()][-1]
    text = last.split(': ', 1)[1] if ': ' in last else last
    where = first[first.find(' in ') + 4:].rstrip('.') if ' in ' in first \
        else 'a dataloader worker'
    return f'{text} (in {where})'


class BadSampleError(UserError, ValueError):
    """A sample cannot be used; the message names the file, field and why."""

    def __init__(self, message: str = '', *args) -> None:
        super().__init__(_unwrap_worker_message(str(message)), *args)


class EmptyDatasetError(BadSampleError):
    """A dataset has no usable sample."""


class TooManyBadSamplesError(BadSampleError):
    """More than ``max_bad_fraction`` of a dataset's samples were bad."""


def sample_file(info: dict | None) -> str | None:
    """The file a data-info dict reads (``img_path`` or another ``*path`` /
    ``*file`` string)."""
    if not isinstance(info, dict):
        return None
    if isinstance(info.get('img_path'), str):
        return info['img_path']
    for key, value in info.items():
        if isinstance(value, str) and key.endswith(('path', 'file')):
            return value
    return None


def summarize_reasons(records: list[dict], top: int = 2) -> str:
    """``"<n>x <reason> (e.g. <file>); ..."`` of the commonest reasons."""
    counts: Counter = Counter()
    example: dict = {}
    for record in records:
        reason, file = record.get('reason', ''), record.get('file')
        why = (reason.replace(file, '<file>') if file else reason)[:100]
        counts[why] += 1
        example.setdefault(why, file)
    return '; '.join(
        f'{n}x {why}' + (f' (e.g. {example[why]})' if example[why] else '')
        for why, n in counts.most_common(top))


class PerceptionDataset(BaseDataset):
    """``BaseDataset`` with ``on_bad_sample`` ('error' or 'skip') and
    ``max_bad_fraction`` (of the samples, 0..1; default 0.1)."""

    def __init__(self, *args, on_bad_sample: str = 'error',
                 max_bad_fraction: float = 0.1, **kwargs) -> None:
        if on_bad_sample not in ('error', 'skip'):
            raise ValueError(f"on_bad_sample must be 'error' or 'skip', got "
                             f'{on_bad_sample!r}')
        if not 0.0 <= float(max_bad_fraction) <= 1.0:
            raise ValueError('max_bad_fraction must be between 0 and 1, got '
                             f'{max_bad_fraction!r}')
        self.on_bad_sample = on_bad_sample
        self.max_bad_fraction = float(max_bad_fraction)
        self.bad_samples: list[str] = []
        self.bad_records: list[dict] = []
        #: JSON-lines file that every skip is appended to (set by the run's
        #: BadSampleHook; workers inherit it)
        self.bad_sample_log: str | None = None
        self.in_flight = InFlight(self)
        self._logged: set = set()
        # Build transforms in perception's scope (mmengine's Compose would
        # look them up in its own root registry), as mmpretrain does.
        pipeline = kwargs.pop('pipeline', [])
        kwargs['pipeline'] = [TRANSFORMS.build(t) if isinstance(t, dict)
                              else t for t in pipeline]
        super().__init__(*args, **kwargs)

    # -- recording -----------------------------------------------------------
    def skip_bad(self, exc: BaseException, index: int | None = None,
                 file: str | None = None, stage: str = 'load') -> None:
        """Record a bad sample under ``'skip'``, re-raise under ``'error'``
        (readers call this for each record they cannot use at load)."""
        if self.on_bad_sample == 'error':
            raise exc
        record = dict(stage=stage, dataset=type(self).__name__,
                      data_root=self.data_root or '.', index=index,
                      file=file, reason=str(exc))
        self.bad_samples.append(str(exc))
        self.bad_records.append(record)
        if self.bad_sample_log:
            with open(self.bad_sample_log, 'a', encoding='utf-8') as f:
                f.write(json.dumps(dict(record, pid=os.getpid(),
                                        time=time.time())) + '\n')
        else:
            key = (stage, index, str(exc))
            if key not in self._logged:  # once each
                self._logged.add(key)
                print_log(f'skipping bad sample: {exc}', logger='current',
                          level=30)

    # -- loading -------------------------------------------------------------
    def filter_data(self) -> list[dict]:
        data = super().filter_data()  # right after load_data_list
        self._check_loaded(len(data))
        return data

    def _check_loaded(self, kept: int) -> None:
        bad = [r for r in self.bad_records if r['stage'] == 'load']
        listed = kept + len(bad)
        name, root = type(self).__name__, self.data_root or '.'
        if kept == 0:
            why = (f'all {listed} records were bad and skipped (e.g. '
                   f'{bad[0]["reason"]})' if bad else
                   'the reader found no records')
            raise EmptyDatasetError(
                f'{name}: no usable samples under {root}: {why}; check '
                'data_root and the annotation file')
        if len(bad) > self.max_bad_fraction * listed:
            raise TooManyBadSamplesError(
                f'{name}: {len(bad)} of {listed} records under {root} are '
                f'bad ({len(bad) / listed:.0%} > max_bad_fraction='
                f'{self.max_bad_fraction:g}): {summarize_reasons(bad)}; fix '
                'the data or raise max_bad_fraction')

    # -- reading -------------------------------------------------------------
    def prepare_data(self, idx: int) -> Any:
        self.in_flight.mark(idx)
        try:
            return super().prepare_data(idx)
        except BadSampleError as exc:
            if self.on_bad_sample == 'error' or self.test_mode:
                raise
            info = None
            try:
                info = self.get_data_info(idx)
            except Exception:  # noqa: BLE001 - the file name is a nicety
                pass
            self.skip_bad(exc, index=int(idx), file=sample_file(info),
                          stage='read')
            return None  # __getitem__ draws another index in training
        finally:
            self.in_flight.mark(None)

    def __getitem__(self, idx: int) -> Any:
        if self.test_mode:
            return super().__getitem__(idx)
        if not self._fully_initialized:
            self.full_init()
        for _ in range(self.max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            self._check_read_fraction()
            idx = self._rand_another()
        raise TooManyBadSamplesError(
            f'{type(self).__name__}: no usable sample in {self.max_refetch} '
            f'draws under {self.data_root or "."}: '
            f'{summarize_reasons(self.bad_records) or "the pipeline dropped every one"}')

    def _check_read_fraction(self) -> None:
        """Seen by this process alone, distinct bad samples already exceed
        the fraction (the run's BadSampleHook counts across workers)."""
        bad = [r for r in self.bad_records if r['stage'] == 'read']
        distinct = {r['index'] for r in bad}
        if len(distinct) > self.max_bad_fraction * len(self):
            raise TooManyBadSamplesError(
                f'{type(self).__name__}: {len(distinct)} of {len(self)} '
                f'samples under {self.data_root or "."} are bad '
                f'(> max_bad_fraction={self.max_bad_fraction:g}): '
                f'{summarize_reasons(bad)}; fix or remove those files, or '
                'raise max_bad_fraction')
