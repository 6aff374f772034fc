"""``SubgroupMetric``: any registered metric, also reported per subgroup of a
metadata field (:mod:`perception.evaluation.subgroups`), so ``perception
test`` prints the table and writes it as JSON.

Config (driving, BDD100K's frame attributes kept by ``PackInputs``)::

    test_evaluator = dict(
        type='SubgroupMetric', metric=dict(type='CocoMetric'), key='AP50',
        fields=['timeofday', 'weather', 'scene'], min_group_size=20,
        n_boot=200, out='subgroups.json')

The wrapped metric sees every sample once, one at a time; its results are
kept per sample with the sample's field values (read from the sample's
meta, so the dataset must put them there), and its own ``compute_metrics``
runs on the whole set and on each group and bootstrap resample. Metrics
whose per-sample results depend on each other across samples (e.g. a
dataset-level normalisation) are not suited. A relative ``out`` is written
under the run's work dir (``perception test`` places it there).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from perception.evaluation.subgroups import (
    SubgroupReport,
    check_field,
    subgroup_report,
)
from perception.registry import METRICS

_RESULTS = '_results'


@METRICS.register_module()
class SubgroupMetric(BaseMetric):
    """Wrap ``metric`` and split its ``key`` by each of ``fields``.

    Args:
        metric: config of the wrapped metric (e.g. ``dict(type='Accuracy')``).
        fields: sample meta keys to group by.
        key: the wrapped metric's result to split (un-prefixed, e.g.
            ``'top1'``, ``'AP50'``, ``'CPM'``); default its first.
        min_group_size, n_boot, confidence, seed, higher_is_better, bands:
            as in :func:`~perception.evaluation.subgroups.subgroup_report`.
        unit_key: meta key of the resampling unit (``'series_uid'`` for
            scans); default each sample.
        out: write the report as JSON here.
        prefix: prefix of the group metrics (default ``'subgroup'``); the
            wrapped metric's own results keep its prefix.
    """

    default_prefix = 'subgroup'

    def __init__(self, metric: Mapping, fields: Sequence[str],
                 key: str | None = None, min_group_size: int = 10,
                 n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                 higher_is_better: bool = True, unit_key: str | None = None,
                 bands: Mapping[str, Any] | None = None,
                 out: str | None = None, collect_device: str = 'cpu',
                 prefix: str | None = None, **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         **kwargs)
        self.inner: BaseMetric = METRICS.build(dict(metric))
        self.fields = list(fields)
        self.key = key
        self.options = dict(min_group_size=min_group_size, n_boot=n_boot,
                            confidence=confidence, seed=seed,
                            higher_is_better=higher_is_better,
                            unit_key=unit_key, bands=dict(bands or {}))
        self.out = out
        self.report: SubgroupReport | None = None
        # BaseMetric.evaluate prefixes every key with self.prefix: the
        # wrapped metric's keys keep their own prefix instead.
        self.group_prefix, self.prefix = self.prefix, None
        for name in self.fields:  # fail at build time, not after the run
            check_field(name)

    @property
    def dataset_meta(self) -> dict | None:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = dataset_meta
        self.inner.dataset_meta = dataset_meta

    def process(self, data_batch: Any, data_samples: Sequence) -> None:
        wanted = self.fields + ([self.options['unit_key']]
                                if self.options['unit_key'] else [])
        for sample in data_samples:
            start = len(self.inner.results)
            self.inner.process(data_batch, [sample])
            results = self.inner.results[start:]
            del self.inner.results[start:]
            meta = sample if isinstance(sample, Mapping) else \
                sample.metainfo
            record = {name: _plain(meta.get(name)) for name in wanted}
            record[_RESULTS] = results
            self.results.append(record)

    def _inner_metrics(self, records: list[dict]) -> dict:
        return self.inner.compute_metrics(
            [r for record in records for r in record[_RESULTS]])

    def compute_metrics(self, results: list) -> dict:
        overall = self._inner_metrics(results)
        key = self.key or next(iter(overall))
        if key not in overall:
            raise KeyError(f'SubgroupMetric: the wrapped '
                           f'{type(self.inner).__name__} has no result '
                           f'{key!r}; it has {sorted(overall)}')

        def metric(records: list[dict]) -> float:
            return float(self._inner_metrics(records)[key]) if records \
                else float('nan')
        inner_prefix = self.inner.prefix
        name = f'{inner_prefix}/{key}' if inner_prefix else key
        self.report = subgroup_report(results, self.fields, metric,
                                      metric_name=name, **self.options)
        print_log('\n' + self.report.table(), logger='current')
        if self.out:
            self.report.write_json(self.out)
            print_log(f'wrote the subgroup report to {self.out}',
                      logger='current')
        metrics = {(f'{inner_prefix}/{k}' if inner_prefix else k): v
                   for k, v in overall.items()}
        for row in self.report.groups:
            if not row.suppressed:
                metrics[f'{self.group_prefix}/{row.field}/{row.value}'] = \
                    row.metric
        for field_name, value in self.report.worst.items():
            if value is not None:
                metrics[f'{self.group_prefix}/{field_name}/worst_gap'] = \
                    self.report.group(field_name, value).gap
        return metrics


def _plain(value: Any) -> Any:
    """A meta value as a JSON-ready scalar (tensors and arrays of one item
    become numbers)."""
    if hasattr(value, 'numel') and value.numel() == 1:  # torch
        return value.item()
    if hasattr(value, 'item') and getattr(value, 'size', None) == 1:  # numpy
        return value.item()
    return value
