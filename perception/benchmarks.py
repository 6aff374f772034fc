"""Benchmarks run by ``perception benchmark NAME``: each measures our code
against a baseline in the same process and prints the ratio.

A benchmark is a :class:`Benchmark` subclass registered in ``BENCHMARKS``.
:func:`interleave` runs A and B alternately after warm-up (so drift in the
machine's speed hits both) and reports medians and bests.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from perception.registry import BENCHMARKS


@dataclass
class Timing:
    """Seconds per run of one contestant."""

    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def interleave(contestants: dict[str, Callable[[], object]], repeats: int = 5,
               warmup: int = 1, desc: str = 'benchmark') -> dict[str, Timing]:
    """Time each callable ``repeats`` times, alternating A/B/A/B, with
    progress per run (:mod:`perception.progress`; outside the timings).

    Returns:
        name -> :class:`Timing`.
    """
    from perception.progress import progress
    timings = {name: Timing(name) for name in contestants}
    with progress(total=(warmup + repeats) * len(contestants), desc=desc,
                  unit='run') as bar:
        for _ in range(warmup):
            for fn in contestants.values():
                fn()
                bar.update()
        for _ in range(repeats):
            for name, fn in contestants.items():
                start = time.perf_counter()
                fn()
                timings[name].seconds.append(time.perf_counter() - start)
                bar.update()
    return timings


def format_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table (pastes into docs/benchmarks.md as printed)."""
    def cell(value) -> str:
        return f'{value:.4g}' if isinstance(value, float) else str(value)
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


class Benchmark:
    """Base class: set ``name`` and ``help``; implement ``run``."""

    name: str = ''
    help: str = ''

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare options (sizes, repeats...)."""

    def run(self, args: argparse.Namespace) -> int:
        """Measure, print a table with ratios; return the exit status."""
        raise NotImplementedError


def all_benchmarks() -> dict[str, Benchmark]:
    """Registered benchmarks by name (core and plugins)."""
    BENCHMARKS.import_from_location()
    return {(cls.name or name): cls()
            for name, cls in sorted(BENCHMARKS.module_dict.items())}
