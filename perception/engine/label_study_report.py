"""The label-efficiency study's table: each (row, fraction) with the mean
and standard deviation of its metrics over seeds, the iterations and
minutes its runs took, and at the focus fraction the answer: does the
pretrained detector beat scratch by more than two standard deviations of
the seed spread? Written as Markdown and JSON beside ``runs.jsonl``."""
from __future__ import annotations

import json
import math
import os
import shlex
import statistics
from dataclasses import dataclass, field
from typing import Sequence

from perception.benchmarks import format_table
from perception.engine.label_study_plan import ROWS, fraction_label
from perception.study_domains import StudyDomain

ROW_NAMES = {'scratch': 'scratch', 'pretrained': 'pretrained (fine-tuned)',
             'linear-probe': 'pretrained, linear probe (encoder frozen)',
             'lora': 'pretrained, LoRA (rank 8)',
             'no-layer-decay': 'pretrained, layer decay off'}


@dataclass
class Cell:
    """One (row, fraction): the runs' metrics over seeds."""

    row: str
    fraction: object
    seeds: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    iterations: list[int] = field(default_factory=list)
    minutes: list[float] = field(default_factory=list)

    def mean(self, key: str) -> float | None:
        vals = self.values.get(key) or []
        return statistics.fmean(vals) if vals else None

    def std(self, key: str) -> float | None:
        """Sample standard deviation over seeds (0 for one seed)."""
        vals = self.values.get(key) or []
        if not vals:
            return None
        return statistics.stdev(vals) if len(vals) > 1 else 0.0


def fraction_order(fraction) -> float:
    return math.inf if fraction == 'all' else float(fraction)


def summarize(domain: StudyDomain, records: dict[str, dict]) -> list[Cell]:
    """Cells of the finished runs, by row (the order of ``ROWS``) then
    fraction."""
    cells: dict[tuple, Cell] = {}
    for entry in records.values():
        if entry['id'] == 'pretrain':
            continue
        key = (entry['row'], entry['fraction'])
        cell = cells.setdefault(key, Cell(entry['row'], entry['fraction']))
        cell.seeds.append(entry['seed'])
        for metric, _ in domain.metrics:
            value = entry['metrics'].get(metric)
            if value is not None:
                cell.values.setdefault(metric, []).append(float(value))
        if entry.get('iterations') is not None:
            cell.iterations.append(entry['iterations'])
        cell.minutes.append(entry['train_s'] / 60.0)
    rows = list(ROWS)
    return sorted(cells.values(), key=lambda c: (rows.index(c.row),
                                                 fraction_order(c.fraction)))


def labels_text(domain: StudyDomain, fraction) -> str:
    if domain.fraction_kind == 'images':
        return f'{float(fraction) * 100:g}% of images'
    return 'all patients' if fraction == 'all' else f'{fraction} patients'


def verdict(domain: StudyDomain, cells: Sequence[Cell], focus) -> dict:
    """Pretrained vs scratch at ``focus`` on the first metric: difference,
    pooled seed std, and whether the difference exceeds two of them."""
    metric = domain.metrics[0][0]
    found = {c.row: c for c in cells if c.fraction == focus}
    pre, scr = found.get('pretrained'), found.get('scratch')
    if not pre or not scr or pre.mean(metric) is None or \
            scr.mean(metric) is None:
        return dict(metric=metric, focus=focus, answer='not measured yet')
    diff = pre.mean(metric) - scr.mean(metric)
    pooled = math.sqrt((pre.std(metric) ** 2 + scr.std(metric) ** 2) / 2)
    seeds = min(len(pre.seeds), len(scr.seeds))
    if seeds < 2:
        answer = 'one seed only: no spread to compare against'
    elif diff > 2 * pooled:
        answer = 'yes: pretrained beats scratch by more than 2 std'
    elif diff > 0:
        answer = 'no: pretrained is ahead, by less than 2 std'
    else:
        answer = 'no: pretrained does not beat scratch'
    return dict(metric=metric, focus=focus, pretrained=pre.mean(metric),
                scratch=scr.mean(metric), difference=diff, pooled_std=pooled,
                seeds=seeds, answer=answer)


def _mean_std(cell: Cell, key: str) -> str:
    mean = cell.mean(key)
    if mean is None:
        return '-'
    if len(cell.values[key]) < 2:
        return f'{mean:.4f}'
    return f'{mean:.4f} ± {cell.std(key):.4f}'


def markdown(domain: StudyDomain, cells: Sequence[Cell], records: dict,
             settings: dict, focus, planned: int) -> str:
    """The report: settings, the table, the answer, the commands."""
    header = (['row', 'labels', 'seeds'] + [name for _, name in domain.metrics]
              + ['iterations', 'train min'])
    table = []
    for c in cells:
        iters = (f'{statistics.fmean(c.iterations):.0f}' if c.iterations
                 else '-')
        table.append([ROW_NAMES.get(c.row, c.row),
                      labels_text(domain, c.fraction), len(c.seeds)]
                     + [_mean_std(c, key) for key, _ in domain.metrics]
                     + [iters, f'{statistics.fmean(c.minutes):.1f}'])
    answer = verdict(domain, cells, focus)
    pre = records.get('pretrain', {})
    lines = [
        f'## Label efficiency: {domain.name}',
        '',
        f"Budget: {settings['budget_min']:g} min of wall clock per fine-tuning "
        f"run (same schedule for every row); pretraining budget "
        f"{settings['pretrain_min']:g} min"
        + (f" (took {pre.get('seconds', 0) / 60:.1f} min, last checkpoint "
           f"at epoch/iteration {pre.get('iterations')})" if pre else '')
        + f'; {sum(1 for k in records if k != "pretrain")} of {planned} '
        'runs finished. Mean ± sample std over seeds.',
    ]
    if domain.note:
        lines += ['', domain.note]
    lines += ['', format_table(header, table), '',
              f"At {labels_text(domain, focus)} ({answer['metric']}): "
              f"{answer['answer']}"]
    if 'difference' in answer:
        lines[-1] += (f" (pretrained {answer['pretrained']:.4f} vs scratch "
                      f"{answer['scratch']:.4f}, difference "
                      f"{answer['difference']:+.4f}, pooled std "
                      f"{answer['pooled_std']:.4f}, {answer['seeds']} "
                      f"seed{'s' if answer['seeds'] > 1 else ''})")
    lines += ['', 'Commands (data, pretraining, then each run):', '', '```']
    lines += [shlex.join(['perception', *c]) for c in domain.data_commands]
    for entry in [records[k] for k in ('pretrain', ) if k in records] + [
            e for k, e in records.items() if k != 'pretrain']:
        lines += entry.get('commands', [])
    lines += ['```', '']
    return '\n'.join(lines)


def write_report(study_dir: str, domain: StudyDomain, records: dict,
                 settings: dict, focus, planned: int) -> dict:
    """Write ``label_efficiency.md`` / ``.json``; the paths and the table."""
    cells = summarize(domain, records)
    text = markdown(domain, cells, records, settings, focus, planned)
    md = os.path.join(study_dir, 'label_efficiency.md')
    with open(md, 'w', encoding='utf-8') as f:
        f.write(text)
    data = dict(
        domain=domain.name, settings=settings, focus=focus,
        fraction_kind=domain.fraction_kind,
        verdict=verdict(domain, cells, focus),
        rows=[dict(row=c.row, fraction=c.fraction,
                   label=fraction_label(c.fraction), seeds=c.seeds,
                   mean={k: c.mean(k) for k, _ in domain.metrics},
                   std={k: c.std(k) for k, _ in domain.metrics},
                   values=c.values, iterations=c.iterations,
                   train_min=c.minutes) for c in cells],
        runs=list(records.values()))
    js = os.path.join(study_dir, 'label_efficiency.json')
    with open(js, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=1)
    return dict(markdown=md, json=js, text=text, cells=cells, data=data)
