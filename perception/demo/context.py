"""What a demo part records while it runs: steps (with progress), figures
measured in this run, artifacts (files it wrote) and paragraphs of text.

A part is a class registered in :data:`perception.registry.DEMOS` with
``name``, ``title``, ``steps`` (the step names, for progress) and
``run(ctx: DemoContext) -> None``; it writes everything under ``ctx.dir``
and records what the report shows through ``ctx``.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from perception.progress import Progress, progress

__all__ = ['Artifact', 'Figure', 'DemoContext', 'PartResult',
           'pretraining_verdict', 'trained_iterations']

#: artifact kinds the report knows how to show.
KINDS = ('image', 'video', 'json', 'dicom', 'model', 'config', 'text', 'file')
_IMAGE_EXT = ('.png', '.jpg', '.jpeg')


@dataclass
class Figure:
    """One number measured in this run."""

    key: str
    value: float | int | str | None
    label: str
    unit: str = ''

    def text(self) -> str:
        """The value as the summary, report.md and report.html print it."""
        return format_value(self.value) + (f' {self.unit}' if self.unit else '')


@dataclass
class Artifact:
    """A file the part wrote (``path`` relative to the demo work dir)."""

    path: str
    caption: str
    kind: str = 'file'


@dataclass
class PartResult:
    """Everything one part recorded."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def format_value(value: Any) -> str:
    """Figures print the same everywhere: floats with 4 significant
    decimals, ints as they are, None as 'n/a'."""
    if value is None:
        return 'n/a'
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f'{value:.3g}' if 0 < abs(value) < 1e-3 else f'{value:.4f}'
    return str(value)


def trained_iterations(work_dir: str) -> int:
    """Training iterations the newest checkpoint of ``work_dir`` records
    (a time budget may end a run before its schedule)."""
    from perception.fileio import load_checkpoint_file, resolve_checkpoint
    ckpt = load_checkpoint_file(resolve_checkpoint(work_dir),
                                map_location='cpu')
    return int(ckpt.get('meta', {}).get('iter', 0))


def _kind_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {'.mp4': 'video', '.json': 'json', '.dcm': 'dicom',
            '.onnx': 'model', '.py': 'config', '.md': 'text',
            '.txt': 'text'}.get(ext, 'image' if ext in _IMAGE_EXT else 'file')


class DemoContext:
    """The work area and the record of one demo part.

    Args:
        work_dir: the demo's work dir (the report's folder).
        name, title: the part's.
        fast: the tiny variant (tests, quick looks).
        steps: the part's step names (progress total).
    """

    def __init__(self, work_dir: str | os.PathLike, name: str, title: str,
                 fast: bool, steps: Sequence[str] = ()) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.dir = self.work_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fast = fast
        self.result = PartResult(name, title)
        self._bar: Progress = progress(total=len(steps) or None,
                                       desc=f'demo {name}', unit='step',
                                       interval_s=0.0)
        self._start = time.perf_counter()

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """Time one step and count it in the progress display."""
        self._bar.set_postfix(description)
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.result.steps.append(dict(step=description,
                                      seconds=round(seconds, 2)))
        self._bar.set_postfix(f'{description}: done in {seconds:.1f} s')
        self._bar.update()

    def figure(self, key: str, value: Any, label: str, unit: str = '') -> Any:
        """Record a figure of this run (numpy scalars become Python)."""
        if hasattr(value, 'item'):
            value = value.item()
        self.result.figures.append(Figure(key, value, label, unit))
        return value

    def artifact(self, path: str | os.PathLike, caption: str,
                 kind: str | None = None) -> str:
        """Record a file under the work dir; returns its relative path."""
        full = Path(path).resolve()
        if not full.exists():
            raise FileNotFoundError(f'demo {self.result.name}: artifact '
                                    f'{full} was not written')
        rel = os.path.relpath(full, self.work_dir)
        kind = kind or _kind_of(rel)
        if kind not in KINDS:
            raise ValueError(f'artifact kind {kind!r}: one of {KINDS}')
        self.result.artifacts.append(Artifact(rel, caption, kind))
        return rel

    def paragraph(self, text: str) -> None:
        """A paragraph of the part's report section (plain text)."""
        self.result.paragraphs.append(text.strip())

    def block(self, text: str) -> None:
        """Preformatted text of the part's section (a table, a log)."""
        self.result.blocks.append(text.rstrip())

    def close(self) -> PartResult:
        """End the progress display; the part's record."""
        self._bar.close()
        self.result.seconds = round(time.perf_counter() - self._start, 1)
        return self.result


def pretraining_verdict(pretrained: float, scratch: float, metric: str,
                        margin: float, why_not: str) -> str:
    """One honest sentence on pretrained vs scratch from one seed each: a
    lead counts only above ``margin`` (what one seed can tell apart);
    ``why_not`` says why there is no gain when there is none."""
    gain = pretrained - scratch
    if gain > margin:
        return (f'pretraining is ahead by {gain:.4f} {metric} at this budget '
                '(one seed each: the label-efficiency study in '
                'docs/benchmarks.md says whether it holds over seeds).')
    if gain >= -margin:
        return (f'pretraining does NOT beat scratch at this budget: the '
                f'difference ({gain:+.4f} {metric}) is inside the {margin} '
                f'one seed can tell apart ({why_not}).')
    return ('pretraining does NOT beat scratch at this budget '
            f'({gain:+.4f} {metric}; {why_not}).')
