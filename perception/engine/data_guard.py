"""The run's side of the bad-input policy of
:class:`perception.data.PerceptionDataset`: ``bad_samples.jsonl`` in the
work dir, per-epoch counts against ``max_bad_fraction``, and dataloader
workers that crash or hang reported with the sample they were reading.

Dataloader workers append their skips to a spool file beside
``bad_samples.jsonl`` (each line one ``write`` with ``O_APPEND``); after
every training iteration the hook moves new lines into
``bad_samples.jsonl`` with the epoch added, logs each bad sample the first
time it is seen, and stops the run (:class:`TooManyBadSamplesError`) once
an epoch's bad samples pass the dataset's ``max_bad_fraction``.
"""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from typing import Iterator

from mmengine.hooks import Hook

from perception.data.base_dataset import (
    PerceptionDataset,
    TooManyBadSamplesError,
    sample_file,
    summarize_reasons,
)
from perception.errors import UserError
from perception.registry import HOOKS

BAD_SAMPLES_FILE = 'bad_samples.jsonl'


def perception_datasets(dataset) -> Iterator[PerceptionDataset]:
    """The :class:`PerceptionDataset` leaves inside wrappers (concat,
    repeat, mix datasets)."""
    if isinstance(dataset, PerceptionDataset):
        yield dataset
        return
    for child in getattr(dataset, 'datasets', None) or ():
        yield from perception_datasets(child)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        yield from perception_datasets(inner)


def _loader_dataset(runner, split: str):
    """The dataset of a split's dataloader if the runner built it (never
    builds one)."""
    loop = getattr(runner, f'_{split}_loop', None)
    loader = getattr(loop, 'dataloader', None)
    return getattr(loader, 'dataset', None)


@HOOKS.register_module()
class BadSampleHook(Hook):
    """Write skipped samples to ``<work_dir>/bad_samples.jsonl`` (one JSON
    object a line: ``epoch``, ``stage`` 'load' or 'read', ``dataset``,
    ``data_root``, ``index``, ``file``, ``reason``), count them per epoch
    and stop training past ``max_bad_fraction``."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._spool = self._out = None
        self._offset = 0
        self._seen: set = set()
        self._epoch_bad: dict = defaultdict(set)
        self._watched: dict[str, PerceptionDataset] = {}

    # -- setup -----------------------------------------------------------
    def _watch(self, runner, splits) -> None:
        from mmengine.dist import is_main_process
        if not is_main_process():
            return  # rank 0 writes the file; other ranks' skips are logged
        self._out = os.path.join(runner.work_dir, BAD_SAMPLES_FILE)
        self._spool = os.path.join(runner.work_dir,
                                   f'.{BAD_SAMPLES_FILE}.spool')
        open(self._spool, 'w').close()  # lines of an earlier run are done
        self._offset = 0
        for split in splits:
            for i, ds in enumerate(perception_datasets(
                    _loader_dataset(runner, split))):
                tag = f'{split}[{i}]'
                self._watched[tag] = ds
                ds.bad_sample_tag = tag
                ds.bad_sample_log = self._spool
                loaded = [r for r in ds.bad_records if r['stage'] == 'load']
                self._write([dict(r, epoch=None, split=split)
                             for r in loaded])

    def _write(self, records: list[dict]) -> None:
        if not records:
            return
        with open(self._out, 'a', encoding='utf-8') as f:
            for record in records:
                f.write(json.dumps(record) + '\n')

    def before_train(self, runner) -> None:
        self._watch(runner, ('train', 'val'))

    def before_test(self, runner) -> None:
        self._watch(runner, ('test', ))

    # -- during training ---------------------------------------------------
    def _drain(self, runner) -> list[dict]:
        if not self._spool or not os.path.isfile(self._spool):
            return []
        if os.path.getsize(self._spool) <= self._offset:
            return []
        with open(self._spool, encoding='utf-8') as f:
            f.seek(self._offset)
            text = f.read()
        complete = text[:text.rfind('\n') + 1]  # a line being written waits
        self._offset += len(complete.encode('utf-8'))
        records = [json.loads(line) for line in complete.splitlines()
                   if line.strip()]
        for record in records:
            record['epoch'] = runner.epoch + 1
            key = (record.get('dataset'), record.get('index'),
                   record.get('reason'))
            if key not in self._seen:  # logged once each
                self._seen.add(key)
                runner.logger.warning(f'skipping bad sample: '
                                      f'{record["reason"]}')
        self._write(records)
        return records

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        records = self._drain(runner)
        by_root = defaultdict(list)
        for record in records:
            by_root[(record['dataset'], record['data_root'])].append(record)
            self._epoch_bad[(record['dataset'], record['data_root'])].add(
                record['index'])
        for ds in self._watched.values():
            key = (type(ds).__name__, ds.data_root or '.')
            bad = self._epoch_bad.get(key, ())
            if by_root.get(key) and len(bad) > ds.max_bad_fraction * len(ds):
                raise TooManyBadSamplesError(
                    f'{key[0]}: {len(bad)} of {len(ds)} samples under '
                    f'{key[1]} were bad in epoch {runner.epoch + 1} (> '
                    f'max_bad_fraction={ds.max_bad_fraction:g}): '
                    f'{summarize_reasons(by_root[key])}; each is listed in '
                    f'{self._out}; fix or remove those files, or raise '
                    'max_bad_fraction')

    def after_train_epoch(self, runner) -> None:
        self._drain(runner)
        for (name, root), bad in self._epoch_bad.items():
            if bad:
                runner.logger.warning(
                    f'{name} under {root}: {len(bad)} bad samples skipped in '
                    f'epoch {runner.epoch + 1} (listed in {self._out})')
        self._epoch_bad.clear()


# -- crashed or hung dataloader workers ---------------------------------------


class DataLoaderWorkerError(UserError, RuntimeError):
    """A dataloader worker died or hung; the message names the sample."""


_WORKER_FAILURE = re.compile(
    r'DataLoader worker \(pid\(?s?\)? ?([\d, ]+)\)|DataLoader timed out')


def explain_worker_failure(runner, exc: BaseException) -> None:
    """Raise :class:`DataLoaderWorkerError` naming the sample(s) a crashed
    or hung worker was reading when ``exc`` is torch's report of one;
    return otherwise."""
    message = str(exc)
    match = _WORKER_FAILURE.search(message)
    if not isinstance(exc, RuntimeError) or match is None:
        return
    pids = {int(p) for p in re.findall(r'\d+', match.group(1) or '')}
    busy = []
    for split in ('train', 'val', 'test'):
        for ds in perception_datasets(_loader_dataset(runner, split)):
            for pid, index in ds.in_flight.busy():
                if pids and pid not in pids:
                    continue
                try:
                    file = sample_file(ds.get_data_info(index))
                except Exception:  # noqa: BLE001
                    file = None
                busy.append(f'sample {index} of {type(ds).__name__}'
                            + (f' ({file})' if file else ''))
    what = message.splitlines()[0].rstrip('. ')
    where = ('; it was reading ' + ', '.join(busy)) if busy else (
        '; the sample it was reading is unknown')
    raise DataLoaderWorkerError(
        f'{what}{where}. Check that file (open it, run the pipeline on it '
        'with num_workers=0), fix or remove it; a hang may also need a '
        'larger dataloader timeout') from None
