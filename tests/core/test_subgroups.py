"""Subgroup report: a constructed case with a known weak group (values and
bootstrap intervals against a direct computation), suppression of small
groups, scans resampled as units, identity fields refused, the metric
wrapper against the wrapped metric."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from perception.evaluation import SubgroupMetric, age_band, subgroup_report, value_band
from perception.evaluation.subgroups import SubgroupFieldError
from perception.structures import DataSample


def _records(seed: int = 1) -> list[dict]:
    """Three scanners: A and B detect 90% of samples, C (noisier) 60%;
    D has only 4 samples."""
    rng = np.random.default_rng(seed)
    rate = {'A': 0.9, 'B': 0.9, 'C': 0.6, 'D': 0.9}
    size = {'A': 120, 'B': 100, 'C': 80, 'D': 4}
    records = []
    for scanner, n in size.items():
        hits = rng.random(n) < rate[scanner]
        records += [dict(manufacturer=scanner, value=float(h),
                         sex='F' if i % 2 else 'M') for i, h in
                    enumerate(hits)]
    return records


def _direct_interval(values: np.ndarray, n_boot: int, seed: int):
    """The documented recipe, written out."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[picks].mean(axis=1)
    return np.percentile(means, [2.5, 97.5])


def test_weak_group_values_and_intervals():
    records = _records()
    report = subgroup_report(records, ['manufacturer', 'sex'], 'value',
                             min_group_size=10, n_boot=500, seed=3)
    values = np.array([r['value'] for r in records])
    assert report.overall.n == len(records)
    assert report.overall.metric == pytest.approx(values.mean())
    for scanner in 'ABC':
        group = np.array([r['value'] for r in records
                          if r['manufacturer'] == scanner])
        row = report.group('manufacturer', scanner)
        assert row.n == len(group)
        assert row.metric == pytest.approx(group.mean())
        assert row.gap == pytest.approx(group.mean() - values.mean())
        low, high = _direct_interval(group, 500, 3)
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high))
        # and close to the normal approximation of a proportion's interval
        se = np.sqrt(group.mean() * (1 - group.mean()) / len(group))
        assert row.ci_low == pytest.approx(group.mean() - 1.96 * se,
                                           abs=0.03)
        assert row.ci_high == pytest.approx(group.mean() + 1.96 * se,
                                            abs=0.03)
    assert report.worst['manufacturer'] == 'C'
    weak = report.group('manufacturer', 'C')
    assert weak.gap < -0.15 and weak.ci_high < report.overall.ci_low
    assert report.worst['sex'] in ('F', 'M')
    table = report.table()
    assert 'worst' in table.splitlines()[[i for i, line in enumerate(
        table.splitlines()) if line.startswith('manufacturer  C')][0]]


def test_small_groups_are_suppressed_and_never_worst():
    records = _records()
    records += [dict(manufacturer='E', value=0.0) for _ in range(5)]
    report = subgroup_report(records, ['manufacturer'], 'value',
                             min_group_size=10, n_boot=50)
    for small in ('D', 'E'):
        row = report.group('manufacturer', small)
        assert row.suppressed and row.n is None and row.metric is None
        assert row.ci_low is None and row.gap is None
    assert report.worst['manufacturer'] == 'C'  # E (all zeros) is too small
    line = next(line for line in report.table().splitlines()
                if line.startswith('manufacturer  E'))
    assert '<10' in line and 'suppressed' in line and '0.0' not in line
    data = report.to_dict()
    assert {g['value']: g['n'] for g in data['groups']}['E'] is None
    # all suppressed: no worst group
    assert subgroup_report(records[:8], ['manufacturer'],
                           min_group_size=10, n_boot=0).worst == {
        'manufacturer': None}


def test_scans_are_resampled_as_units_with_a_callable_metric():
    """Two slices per scan; the metric is the fraction of scans with any
    hit (a per-scan statistic a per-record mean cannot give)."""
    records = []
    for scan in range(30):
        kind = 'noisy' if scan % 3 == 0 else 'quiet'
        hit = (scan % 2 == 0) if kind == 'noisy' else True
        records += [dict(series_uid=f's{scan}', kvp=str(100 + 20 * (scan % 3
                                                                    == 0)),
                         scanner=kind, hit=hit and k == 0) for k in range(2)]

    def scan_sensitivity(recs):
        scans = {}
        for r in recs:
            scans[r['series_uid']] = scans.get(r['series_uid'], False) or \
                r['hit']
        return float(np.mean(list(scans.values())))

    report = subgroup_report(records, ['scanner', 'kvp'], scan_sensitivity,
                             unit_key='series_uid', min_group_size=5,
                             n_boot=200)
    assert report.unit == 'series_uid'
    assert report.overall.n == 30
    noisy = report.group('scanner', 'noisy')
    assert noisy.n == 10 and noisy.metric == pytest.approx(0.5)
    assert report.group('scanner', 'quiet').metric == 1.0
    assert report.worst == {'scanner': 'noisy', 'kvp': '120'}
    # whole scans are resampled: a per-record resample would draw some
    # quiet scans' miss slice alone and pull the interval under 1
    assert report.group('scanner', 'quiet').ci_low == 1.0


def test_bands_missing_values_and_identity_fields():
    assert age_band('045Y') == '40-49' and age_band('006M') == '0-9'
    assert age_band(93) == '90+' and age_band('') is None
    assert age_band('garbage') is None
    assert value_band(1.0, (1.5, 3.0), 'mm') == '<1.5 mm'
    assert value_band(1.5, (1.5, 3.0), 'mm') == '1.5-3 mm'
    assert value_band(5, (1.5, 3.0), 'mm') == '>=3 mm'
    records = [dict(value=1.0, thickness=t) for t in (1.0, 2.0, 2.5, None)]
    report = subgroup_report(records, ['thickness'], min_group_size=1,
                             n_boot=0, bands={'thickness': (1.5, 3.0)})
    assert [g.value for g in report.groups] == ['1.5-3', '<1.5', 'missing']
    assert [g.n for g in report.groups] == [2, 1, 1]
    for bad in ('PatientBirthDate', 'patient_id', 'series_uid', 'img_path'):
        with pytest.raises(SubgroupFieldError, match='identifies people'):
            subgroup_report(records, [bad])


def _classified(scanner: str, right: bool) -> DataSample:
    sample = DataSample(metainfo=dict(manufacturer=scanner))
    sample.set_gt_label(0)
    sample.pred_score = torch.tensor([0.9, 0.1] if right else [0.1, 0.9])
    return sample


def test_metric_wrapper_splits_the_wrapped_metric(tmp_path):
    plan = [('A', True)] * 18 + [('A', False)] * 2 + [('B', True)] * 6 + [
        ('B', False)] * 6 + [('C', True)] * 3
    metric = SubgroupMetric(dict(type='Accuracy'), fields=['manufacturer'],
                            key='top1', min_group_size=5, n_boot=100,
                            out=str(tmp_path / 'sub.json'))
    metric.dataset_meta = dict(classes=('a', 'b'))
    assert metric.inner.dataset_meta == dict(classes=('a', 'b'))
    samples = [_classified(s, r).to_dict() for s, r in plan]
    metric.process({}, samples[:10])
    metric.process({}, samples[10:])
    results = metric.evaluate(len(samples))
    assert results['accuracy/top1'] == pytest.approx(100 * 27 / 35)
    assert results['subgroup/manufacturer/A'] == pytest.approx(90.0)
    assert results['subgroup/manufacturer/B'] == pytest.approx(50.0)
    assert 'subgroup/manufacturer/C' not in results  # 3 < 5: suppressed
    assert results['subgroup/manufacturer/worst_gap'] == pytest.approx(
        50.0 - 100 * 27 / 35)
    data = json.loads((tmp_path / 'sub.json').read_text())
    assert data['metric'] == 'accuracy/top1'
    assert data['worst'] == {'manufacturer': 'B'}
    with pytest.raises(SubgroupFieldError):
        SubgroupMetric(dict(type='Accuracy'), fields=['PatientName'])
