"""What a label-efficiency study runs (:mod:`perception.engine.label_study`):
the rows (scratch, pretrained, linear probe, LoRA, layer decay off), the
plan of runs over fractions and seeds, and the small config each run
trains: the domain's detection config with its training set wrapped in
``LabelSubsetDataset``, the wall-clock budget and the seed."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from perception.errors import UserError
from perception.study_domains import StudyDomain

REPO = Path(__file__).resolve().parents[2]

#: row -> (starts from the pretrained encoder, backbone settings, other
#: config lines)
ROWS: dict[str, tuple[bool, dict, str]] = {
    'scratch': (False, {}, ''),
    'pretrained': (True, {}, ''),
    'linear-probe': (True, {'frozen_stages': 'all'}, ''),
    'lora': (True, {'lora': {'rank': 8, 'alpha': 16}}, ''),
    'no-layer-decay': (True, {}, 'optim_wrapper = dict(paramwise_cfg=dict('
                       'layer_decay_rate=1.0))'),
}
ABLATIONS = ('linear-probe', 'lora', 'no-layer-decay')


class StudyError(UserError, RuntimeError):
    """A study cannot go on; the message names the run, its log and why."""


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run: a row at a label fraction with a seed."""

    row: str
    fraction: float | int | str  # images: share; patients: count or 'all'
    seed: int

    @property
    def id(self) -> str:
        return f'{self.row}_{fraction_label(self.fraction)}_s{self.seed}'


@dataclass(frozen=True)
class StudySettings:
    """What makes runs comparable; a study folder keeps one."""

    domain: str
    budget_min: float
    pretrain_min: float
    cfg_options: tuple[str, ...] = ()
    pretrain_cfg_options: tuple[str, ...] = ()


def fraction_label(fraction) -> str:
    """``0.1`` -> ``'10pct'``, ``4`` -> ``'4'``, ``'all'`` -> ``'all'``."""
    if isinstance(fraction, float):
        return f'{fraction * 100:g}pct'.replace('.', 'p')
    return str(fraction)


def parse_fractions(values: Sequence[str], kind: str) -> list:
    """Command-line fractions: shares in (0, 1] for images, patient counts
    (>= 2) or ``all`` for patients."""
    out: list = []
    for value in values:
        try:
            if kind == 'images':
                share = float(value)
                if not 0.0 < share <= 1.0:
                    raise ValueError
                out.append(share)
            elif value == 'all':
                out.append('all')
            else:
                count = int(value)
                if count < 2:
                    raise StudyError(f'--fractions: {value} patients; a CT '
                                     'fraction is at least 2 patients')
                out.append(count)
        except ValueError:
            what = ('a share of the labelled images in (0, 1], e.g. 0.1'
                    if kind == 'images' else
                    "a number of patients (>= 2) or 'all'")
            raise StudyError(f"--fractions: '{value}' is not {what}") from None
    return out


def plan_runs(fractions: Sequence, seeds: int, focus,
              rows: Sequence[str] | None = None) -> list[RunSpec]:
    """The study's runs, most informative first: the focus fraction with one
    seed, the other fractions, the focus's other seeds, then the ablations
    (linear probe, LoRA, layer decay off) at the focus with seed 0;
    ``rows``: only these rows (default all of ``ROWS``)."""
    if focus not in fractions:
        focus = fractions[len(fractions) // 2]
    unknown = sorted(set(rows or ()) - set(ROWS))
    if unknown:
        raise StudyError(f"--rows: unknown row(s) {', '.join(unknown)}; "
                         f"rows: {', '.join(ROWS)}")
    runs = [RunSpec(row, focus, 0) for row in ('scratch', 'pretrained')]
    runs += [RunSpec(row, f, 0) for f in fractions if f != focus
             for row in ('scratch', 'pretrained')]
    runs += [RunSpec(row, focus, s) for s in range(1, seeds)
             for row in ('scratch', 'pretrained')]
    runs += [RunSpec(row, focus, 0) for row in ABLATIONS]
    return [r for r in runs if rows is None or r.row in rows]


def resolve_config(path: str) -> str:
    """An absolute config path: as given, else under the repository."""
    for candidate in (Path(path), REPO / path):
        if candidate.is_file():
            return str(candidate.resolve())
    raise StudyError(f"config '{path}' not found (relative to {os.getcwd()} "
                     f'or {REPO})')


def subset_args(domain: StudyDomain, fraction, seed: int) -> str:
    if domain.fraction_kind == 'images':
        return f'fraction={float(fraction)!r}, seed={seed}'
    count = None if fraction == 'all' else int(fraction)
    return f'num_groups={count!r}, group_key={domain.group_key!r}, seed={seed}'


def run_config_text(domain: StudyDomain, spec: RunSpec, budget_min: float,
                    pretrain_dir: str) -> str:
    """The config of one run: the domain's detection config with the label
    subset, the budget, the seed and the row's changes."""
    pretrained, backbone, extra = ROWS[spec.row]
    base = resolve_config(domain.pretrained_config if pretrained
                          else domain.scratch_config)
    lines = [
        f'# perception benchmark label-efficiency --domain {domain.name}: '
        f'row {spec.row}, labels {fraction_label(spec.fraction)}, seed '
        f'{spec.seed}',
        f'_base_ = [{base!r}]',
        'train_dataloader = dict(dataset=dict(',
        "    _delete_=True, type='LabelSubsetDataset',",
        '    dataset=_base_.train_dataloader.dataset,',
        f'    {subset_args(domain, spec.fraction, spec.seed)}))',
        "custom_hooks = [h for h in _base_.get('custom_hooks', [])",
        "                if h['type'] != 'TimeBudgetHook'] + [",
        f"    dict(type='TimeBudgetHook', minutes={float(budget_min)!r})]",
        f'randomness = dict(seed={spec.seed})',
    ]
    if pretrained:
        backbone = dict(init_cfg=dict(type='Pretrained',
                                      checkpoint=pretrain_dir), **backbone)
    if backbone:
        lines.append(f'model = dict(backbone={backbone!r})')
    if extra:
        lines.append(extra)
    return '\n'.join(lines) + '\n'


def pretrain_config_text(domain: StudyDomain, minutes: float) -> str:
    base = resolve_config(domain.pretrain_config)
    return '\n'.join([
        f'# perception benchmark label-efficiency --domain {domain.name}: '
        'masked pretraining, no labels',
        f'_base_ = [{base!r}]',
        "custom_hooks = [h for h in _base_.get('custom_hooks', [])",
        "                if h['type'] != 'TimeBudgetHook'] + [",
        f"    dict(type='TimeBudgetHook', minutes={float(minutes)!r})]",
    ]) + '\n'
