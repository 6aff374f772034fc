"""Subgroup report: a per-sample or per-scan metric split by a metadata field,
for every domain (CT: manufacturer, scanner model, kVp, slice-thickness band,
sex, age band; driving: BDD100K ``timeofday``, ``weather``, ``scene``).

Input is a list of *records*, one per sample (or per scan), each a dict of
metadata fields and whatever the metric needs. The metric is either a key
(the metric of a group is the mean of that key over its records) or a
callable over a list of records (e.g. CPM of the scans of one scanner).

For the whole set and for every group the report gives the number of units,
the metric, a percentile bootstrap interval and the gap to the whole set;
per field it names the worst group. Bootstrap, exactly (so a reader can
reproduce it): for each group, a fresh ``numpy.random.default_rng(seed)``
draws ``n_boot`` resamples of the group's units with replacement
(``rng.integers(0, n, size=(n_boot, n))``, one row per resample), the
metric is computed on each, and the interval is
``numpy.nanpercentile(values, [50 - 50 c, 50 + 50 c])`` for confidence
``c``. With ``unit_key`` (e.g. ``'series_uid'``) units are the distinct
values of that key, so slices of one scan are resampled together and ``n``
counts scans.

Groups with fewer than ``min_group_size`` units are suppressed: neither
their size nor their metric is reported (small cells can single people
out), and they never count as the worst group. Records without a value for
a field go to the group ``'missing'``, counted like any other.

Fields must not identify people: names such as ``PatientBirthDate`` or
``PatientID`` are refused; band them at index time instead
(:func:`age_band`, :func:`value_band`).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

MetricFn = Callable[[list[dict]], float]

#: group of records without a value for the field.
MISSING = 'missing'

#: field names (lower case, without ``_``, spaces and ``'``) that identify
#: people or files; a report refuses to group by them.
IDENTITY_FIELDS = frozenset({
    'patientname', 'patientsname', 'patientid', 'patientsid',
    'otherpatientids', 'otherpatientnames', 'patientbirthdate',
    'patientsbirthdate', 'patientbirthtime', 'birthdate', 'dateofbirth',
    'dob', 'patientaddress', 'patientsaddress', 'patienttelephonenumbers',
    'accessionnumber', 'medicalrecordnumber', 'mrn', 'name', 'imgpath',
    'path', 'filename', 'file', 'seriesuid', 'seriesinstanceuid',
    'studyinstanceuid', 'studyuid', 'sopinstanceuid', 'studydate',
    'seriesdate', 'acquisitiondate', 'contentdate', 'institutionname',
    'institutionaddress', 'referringphysicianname', 'operatorsname',
    'performingphysicianname', 'deviceserialnumber',
})


class SubgroupFieldError(ValueError):
    """A field the report must not group by, or a bad report argument."""


def check_field(name: str) -> None:
    """Refuse a field name that identifies people or files."""
    key = re.sub(r"[\s_'\-]", '', name).lower()
    if key in IDENTITY_FIELDS:
        raise SubgroupFieldError(
            f'subgroup field {name!r} identifies people or files; group by a '
            'band made at index time instead (e.g. age_band from '
            'PatientAge, not the birth date; the scanner model, not its '
            'serial number)')


def age_band(age: Any, width: int = 10, top: int = 90) -> str | None:
    """Age band of a DICOM ``PatientAge`` (``'045Y'``, ``'006M'``,
    ``'010W'``, ``'003D'``) or a number of years: ``'40-49'``; under a year
    ``'0'``-band (``'0-9'`` at width 10); ``top`` and over as one band
    (``'90+'``, HIPAA's safe-harbour rule). None when unknown."""
    if age is None or (isinstance(age, str) and not age.strip()):
        return None
    if isinstance(age, str):
        match = re.fullmatch(r'\s*(\d+)\s*([DWMY]?)\s*', age.upper())
        if not match:
            return None
        number, unit = int(match.group(1)), match.group(2) or 'Y'
        years = number / {'D': 365.25, 'W': 52.18, 'M': 12.0, 'Y': 1.0}[unit]
    else:
        years = float(age)
        if not math.isfinite(years) or years < 0:
            return None
    if years >= top:
        return f'{top}+'
    low = int(years // width) * width
    return f'{low}-{low + width - 1}'


def value_band(value: Any, edges: Sequence[float], unit: str = '') -> str | None:
    """Band of a number between ascending ``edges``, half-open
    ``[low, high)``: with edges (1.5, 3) and unit ``'mm'``: ``'<1.5 mm'``,
    ``'1.5-3 mm'``, ``'>=3 mm'``. None when the value is not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    suffix = f' {unit}' if unit else ''
    edges = [float(e) for e in edges]
    if number < edges[0]:
        return f'<{edges[0]:g}{suffix}'
    for low, high in zip(edges, edges[1:]):
        if low <= number < high:
            return f'{low:g}-{high:g}{suffix}'
    return f'>={edges[-1]:g}{suffix}'


@dataclass
class GroupResult:
    """One row: a group of a field (``field='overall'`` for all records)."""

    field: str
    value: str
    n: int | None
    metric: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    gap: float | None = None
    suppressed: bool = False


@dataclass
class SubgroupReport:
    """Rows of a subgroup report and how they were made."""

    metric_name: str
    overall: GroupResult
    groups: list[GroupResult]
    worst: dict[str, str | None]
    min_group_size: int
    n_boot: int
    confidence: float
    seed: int
    higher_is_better: bool
    unit: str = 'sample'

    def group(self, field_name: str, value: str) -> GroupResult:
        """The row of ``value`` in ``field_name``."""
        for row in self.groups:
            if row.field == field_name and row.value == value:
                return row
        raise KeyError(f'no group {value!r} in field {field_name!r}')

    def to_dict(self) -> dict:
        """Everything as JSON-ready types."""
        return dict(metric=self.metric_name, unit=self.unit,
                    higher_is_better=self.higher_is_better,
                    confidence=self.confidence, n_boot=self.n_boot,
                    seed=self.seed, min_group_size=self.min_group_size,
                    overall=asdict(self.overall),
                    groups=[asdict(g) for g in self.groups],
                    worst=dict(self.worst))

    def write_json(self, path: str) -> str:
        """Write :meth:`to_dict` to ``path`` (folders made); returns it."""
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(self.to_dict(), f, indent=1)
        return path

    def table(self) -> str:
        """The report as a plain-text table."""
        pct = f'{100 * self.confidence:g}%'
        head = (f'subgroup report: {self.metric_name} ('
                f"{'higher' if self.higher_is_better else 'lower'} is better"
                f'), {pct} bootstrap CI ({self.n_boot} resamples, seed '
                f'{self.seed}), n in {self.unit}s, groups under '
                f'{self.min_group_size} suppressed')
        rows = [('field', 'group', 'n', 'metric', f'{pct} CI', 'gap', '')]
        for row in [self.overall] + self.groups:
            if row.suppressed:
                rows.append((row.field, row.value,
                             f'<{self.min_group_size}', 'suppressed', '', '',
                             ''))
                continue
            mark = 'worst' if self.worst.get(row.field) == row.value else ''
            rows.append((row.field, row.value, str(row.n), _num(row.metric),
                         f'[{_num(row.ci_low)}, {_num(row.ci_high)}]',
                         '' if row is self.overall else _num(row.gap, True),
                         mark))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                 for r in rows]
        return '\n'.join([head] + lines)


def _num(value: float | None, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return 'n/a'
    return f'{value:+.4f}' if signed else f'{value:.4f}'


def _metric_fn(metric: str | MetricFn) -> tuple[MetricFn, str]:
    if callable(metric):
        return metric, getattr(metric, '__name__', 'metric')

    def mean_of(records: list[dict]) -> float:
        values = [float(r[metric]) for r in records]
        return float(np.mean(values)) if values else float('nan')
    return mean_of, str(metric)


def _value_of(record: Mapping, name: str, bands: Mapping) -> str:
    value = record.get(name)
    if name in bands and value is not None:
        spec = bands[name]
        value = age_band(value) if spec == 'age' else value_band(value, spec)
    if value is None or (isinstance(value, float) and math.isnan(value)) \
            or (isinstance(value, str) and not value.strip()):
        return MISSING
    return str(value)


def _units(records: list[dict], unit_key: str | None) -> list[list[dict]]:
    """Records grouped into resampling units (one record each by default)."""
    if unit_key is None:
        return [[r] for r in records]
    units: dict[Any, list[dict]] = {}
    for record in records:
        if record.get(unit_key) is None:
            raise SubgroupFieldError(f'subgroup report: a record has no '
                                     f'{unit_key!r} (the unit_key)')
        units.setdefault(record[unit_key], []).append(record)
    return list(units.values())


def _bootstrap(units: list[list[dict]], fn: MetricFn, n_boot: int,
               confidence: float, seed: int) -> tuple[float, float]:
    if n_boot <= 0 or not units:
        return float('nan'), float('nan')
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(units), size=(n_boot, len(units)))
    values = np.array([fn([r for i in row for r in units[i]])
                       for row in picks], dtype=float)
    if np.all(np.isnan(values)):
        return float('nan'), float('nan')
    half = 50.0 * confidence
    low, high = np.nanpercentile(values, [50.0 - half, 50.0 + half])
    return float(low), float(high)


def _row(field_name: str, value: str, units: list[list[dict]], fn: MetricFn,
         n_boot: int, confidence: float, seed: int) -> GroupResult:
    records = [r for unit in units for r in unit]
    low, high = _bootstrap(units, fn, n_boot, confidence, seed)
    return GroupResult(field_name, value, len(units), float(fn(records)),
                       low, high)


def subgroup_report(records: Sequence[Mapping], fields: Sequence[str],
                    metric: str | MetricFn = 'value', *,
                    metric_name: str | None = None, min_group_size: int = 10,
                    n_boot: int = 1000, confidence: float = 0.95,
                    seed: int = 0, higher_is_better: bool = True,
                    unit_key: str | None = None,
                    bands: Mapping[str, Any] | None = None) -> SubgroupReport:
    """Split ``metric`` over ``records`` by each of ``fields``.

    Args:
        records: one dict per sample or scan: the fields, and the metric's
            inputs (a per-sample value under the key ``metric`` names).
        fields: metadata keys to group by (each reported separately).
        metric: a record key (group metric = mean of it) or a callable
            mapping a list of records to a float (e.g. CPM).
        metric_name: how the report names the metric (default: the key or
            the callable's name).
        min_group_size: groups with fewer units are suppressed.
        n_boot: bootstrap resamples per group (0: no intervals).
        confidence: interval coverage, e.g. 0.95.
        seed: seed of every group's resampling (see the module docstring).
        higher_is_better: which end is worst.
        unit_key: resample and count by this key (e.g. ``'series_uid'``)
            rather than by record.
        bands: field -> ``'age'`` (:func:`age_band`) or ascending edges
            (:func:`value_band`), applied to raw values before grouping.

    Raises:
        SubgroupFieldError: a field that identifies people, bad settings.
    """
    if not 0 < confidence < 1:
        raise SubgroupFieldError(f'subgroup report: confidence must be in '
                                 f'(0, 1), got {confidence}')
    if min_group_size < 1:
        raise SubgroupFieldError('subgroup report: min_group_size must be '
                                 f'at least 1, got {min_group_size}')
    for name in fields:
        check_field(name)
    records = [dict(r) for r in records]
    bands = dict(bands or {})
    fn, default_name = _metric_fn(metric)
    overall = _row('overall', 'all', _units(records, unit_key), fn, n_boot,
                   confidence, seed)
    groups: list[GroupResult] = []
    worst: dict[str, str | None] = {}
    for name in fields:
        split: dict[str, list[dict]] = {}
        for record in records:
            split.setdefault(_value_of(record, name, bands), []).append(
                record)
        rows = []
        for value in sorted(split, key=lambda v: (v == MISSING, v)):
            units = _units(split[value], unit_key)
            if len(units) < min_group_size:
                rows.append(GroupResult(name, value, None, None,
                                        suppressed=True))
                continue
            row = _row(name, value, units, fn, n_boot, confidence, seed)
            row.gap = row.metric - overall.metric
            rows.append(row)
        ranked = [r for r in rows if not r.suppressed
                  and math.isfinite(r.metric)]
        pick = min if higher_is_better else max
        worst[name] = pick(ranked, key=lambda r: r.metric).value \
            if ranked else None
        groups += rows
    return SubgroupReport(
        metric_name=metric_name or default_name, overall=overall,
        groups=groups, worst=worst, min_group_size=min_group_size,
        n_boot=n_boot, confidence=confidence, seed=seed,
        higher_is_better=higher_is_better,
        unit=unit_key or 'sample')
