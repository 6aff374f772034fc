"""What :func:`~perception_medical.dicom.series.load_series` returns and how
it reports: :class:`Volume`, :class:`SeriesReport`, :class:`SeriesError`,
the reason codes and the policies, and :class:`LoadPolicy`, which applies the
caller's policy to each problem found while loading.

Both halves of the loader import these from here, so imports go one way:
:mod:`~perception_medical.dicom.series` (picks and checks the slices) ->
:mod:`~perception_medical.dicom.series_build` (reads and stacks them) ->
this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

from perception.errors import UserError

__all__ = ['Volume', 'SeriesReport', 'SeriesError', 'Problem', 'LoadPolicy',
           'resolve_policies', 'CODES', 'POLICIES', 'DEFAULTS', 'OnProblem']

CODES = ('uneven_spacing', 'missing_slices', 'gantry_tilt',
         'mixed_orientation', 'duplicate_position', 'too_few_slices',
         'missing_attribute', 'unreadable')
POLICIES = ('error', 'warn', 'keep_largest', 'resample')
DEFAULTS = {**{code: 'error' for code in CODES}, 'unreadable': 'warn'}
OnProblem = Union[str, dict]


class SeriesError(UserError, ValueError):
    """A series cannot be loaded under the chosen policy. ``code`` is one of
    :data:`CODES`, or ``several_series`` / ``series_not_found``."""

    def __init__(self, message: str, code: str,
                 candidates: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.candidates = list(candidates)


@dataclass
class Problem:
    code: str
    policy: str
    detail: str


@dataclass
class SeriesReport:
    """What load_series found and did: problems (code, policy, detail),
    skipped files (not DICOM images) and dropped slices, each with why."""

    problems: list[Problem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    @property
    def counts(self) -> dict[str, int]:
        return {'problems': len(self.problems), 'skipped': len(self.skipped),
                'dropped': len(self.dropped), 'notes': len(self.notes)}

    def __str__(self) -> str:
        lines = [f'{p.code} ({p.policy}): {p.detail}' for p in self.problems]
        lines += [f'skipped {path}: {why}' for path, why in self.skipped]
        lines += [f'dropped {path}: {why}' for path, why in self.dropped]
        return '\n'.join(lines + self.notes) or 'no problems'


@dataclass
class Volume:
    """A calibrated volume.

    Attributes:
        array: float32 (z, y, x) in modality units ((z, y, x, 3) for colour).
        affine: 4x4, homogeneous index (z, y, x, 1) -> LPS (x, y, z, 1) mm.
        spacing: (z, y, x) mm; z from the slice positions.
        meta: no PHI: series_uid, modality, photometric_interpretation,
            transfer_syntax, decoder...
        report: :class:`SeriesReport`.
        files: source of each slice (path, or 'path [frame n]').
        positions: (z, 3) LPS of each slice's first voxel as read (before
            any resampling).
    """

    array: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    meta: dict
    report: SeriesReport
    files: list[str] = field(default_factory=list)
    positions: np.ndarray | None = None

    def index_to_lps(self, zyx) -> np.ndarray:
        """(..., 3) voxel indices (z, y, x) -> (..., 3) LPS mm."""
        zyx = np.asarray(zyx, np.float64)
        return zyx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, xyz) -> np.ndarray:
        """(..., 3) LPS mm -> (..., 3) fractional voxel indices (z, y, x)."""
        xyz = np.asarray(xyz, np.float64)
        inverse = np.linalg.inv(self.affine[:3, :3])
        return (xyz - self.affine[:3, 3]) @ inverse.T


def resolve_policies(on_problem: OnProblem) -> dict[str, str]:
    if isinstance(on_problem, str):
        chosen = {code: on_problem for code in CODES}
        if on_problem == 'error':
            chosen['unreadable'] = 'warn'   # the documented default
    else:
        unknown = set(on_problem) - set(CODES)
        if unknown:
            raise ValueError(f'on_problem: unknown reason code(s) '
                             f'{sorted(unknown)}; use {", ".join(CODES)}')
        chosen = {**DEFAULTS, **on_problem}
    bad = {c: p for c, p in chosen.items() if p not in POLICIES}
    if bad:
        raise ValueError(f'on_problem: unknown policy {bad}; use one of '
                         f'{", ".join(POLICIES)}')
    return chosen


class LoadPolicy:
    """Policy bookkeeping for one load: where (for messages), the policy per
    reason code and the report being filled."""

    def __init__(self, where: str, policies: dict[str, str]) -> None:
        self.where, self.policies = where, policies
        self.report = SeriesReport()

    def problem(self, code: str, detail: str) -> str:
        policy = self.policies[code]
        if policy == 'error':
            hint = (f"; pass on_problem={{'{code}': 'warn'|'keep_largest'"
                    f"|'resample'}} to go on")
            raise SeriesError(f'{self.where}: {code}: {detail}{hint}', code)
        self.report.problems.append(Problem(code, policy, detail))
        return policy

    def fatal(self, code: str, detail: str) -> SeriesError:
        return SeriesError(f'{self.where}: {code}: {detail}', code)
