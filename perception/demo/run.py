"""Run demo parts from :data:`~perception.registry.DEMOS` and write the
report."""
from __future__ import annotations

import os
import platform
import time
from typing import Sequence

from perception.demo.context import DemoContext, PartResult
from perception.demo.report import summary_lines, write_report
from perception.errors import UserError
from perception.progress import summary

__all__ = ['DemoError', 'available_parts', 'run_demo']

#: the order parts run in when all are asked for (others follow by name).
ORDER = ('driving', 'medical')


class DemoError(UserError, ValueError):
    """A demo part that is unknown or whose plugin is not installed."""


def available_parts() -> list[str]:
    """Names of the registered demo parts (plugins loaded first)."""
    from perception.plugins import load_plugins
    from perception.registry import DEMOS
    load_plugins()
    names = list(DEMOS.module_dict)
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER
                                        else len(ORDER), n))


def _resolve(parts: Sequence[str]) -> list[str]:
    known = available_parts()
    if not parts or list(parts) == ['all']:
        if not known:
            raise DemoError('perception demo: no demo part is registered; '
                            "install the plugins: pip install -e '.[driving,"
                            "medical,deploy]' (or make install)")
        return known
    missing = [p for p in parts if p not in known]
    if missing:
        raise DemoError(f'perception demo: no part {", ".join(missing)}; '
                        f'registered: {", ".join(known) or "none"} (a part '
                        'comes with its plugin: see `perception plugins`)')
    return list(parts)


def run_demo(parts: Sequence[str] = ('all', ), work_dir: str = 'work_dirs/demo',
             fast: bool = False) -> dict:
    """Run the demo parts and write the report.

    Args:
        parts: part names, or ``['all']``.
        work_dir: where everything goes (report.html at its top).
        fast: the tiny variant (a few frames and iterations: minutes).

    Returns:
        dict(parts=[PartResult...], report={md, html, figures}, summary=lines).
    """
    from perception.registry import DEMOS
    names = _resolve(parts)
    os.makedirs(work_dir, exist_ok=True)
    start = time.perf_counter()
    results: list[PartResult] = []
    for name in names:
        part = DEMOS.get(name)()
        ctx = DemoContext(work_dir, name, part.title, fast,
                          steps=getattr(part, 'steps', ()))
        try:
            part.run(ctx)
        finally:
            results.append(ctx.close())
    meta = dict(created=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
                machine=f'{platform.machine()}, {os.cpu_count()} CPUs, '
                f'{platform.python_implementation()} {platform.python_version()}',
                fast=fast, seconds=round(time.perf_counter() - start, 1),
                parts=names)
    report = write_report(work_dir, results, meta)
    lines = summary_lines(results, work_dir)
    for line in ['', 'perception demo: summary'] + lines:
        summary(line)
    return dict(parts=results, report=report, summary=lines, meta=meta)
