"""Loading a DICOM series into a calibrated volume.

:func:`load_series` indexes the files in parallel (headers only), picks one
series, drops localizers, sorts slices by the projection of
ImagePositionPatient on the slice normal, takes the slice spacing from the
positions (never SliceThickness), checks the geometry and applies the
caller's policy per problem (``error``, ``warn``, ``keep_largest``,
``resample``). Native files are read straight into the output buffer with
numpy; everything else goes through :func:`perception_medical.read_dicom`.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

from . import series_geometry as geo
from .header_scan import SliceHeader, list_dicom_files, scan_headers
from .reading import DicomReadError

__all__ = ['load_series', 'Volume', 'SeriesError', 'SeriesReport',
           'CODES', 'POLICIES']

CODES = ('uneven_spacing', 'missing_slices', 'gantry_tilt',
         'mixed_orientation', 'duplicate_position', 'too_few_slices',
         'missing_attribute', 'unreadable')
POLICIES = ('error', 'warn', 'keep_largest', 'resample')
DEFAULTS = {**{code: 'error' for code in CODES}, 'unreadable': 'warn'}
OnProblem = Union[str, dict]


class SeriesError(ValueError):
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


def _policies(on_problem: OnProblem) -> dict[str, str]:
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


class _Run:
    """Policy bookkeeping for one load."""

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


def load_series(path: Union[str, os.PathLike, Sequence[str]],
                series_uid: str | None = None,
                on_problem: OnProblem = 'error', *,
                min_slices: int = 2, workers: int | None = None) -> Volume:
    """Load one DICOM series as a :class:`Volume`.

    Args:
        path: a folder (searched recursively), a DICOMDIR or a list of files.
        series_uid: the SeriesInstanceUID to load when there are several;
            ``UID#echo=2`` (or ``#temporal=``/``#acquisition=``) picks one
            volume of a series holding several at the same positions.
        on_problem: one policy for every reason code, or a dict code ->
            policy; codes missing from the dict keep their defaults
            (``error``; ``unreadable``: ``warn``). What the other policies
            do, per code: ``uneven_spacing``/``missing_slices``: ``warn``
            keeps every slice (``Volume.positions`` has the true positions,
            the affine the typical step), ``keep_largest`` keeps the longest
            evenly spaced run, ``resample`` interpolates linearly onto the
            typical step; ``gantry_tilt``: ``warn``/``keep_largest`` keep
            the slices with a sheared affine (exact DICOM geometry),
            ``resample`` shifts each slice in-plane onto an orthogonal grid;
            ``mixed_orientation``: any of them keeps the largest group on
            one grid; ``duplicate_position``: keeps the first file (by name)
            per position; ``missing_attribute``/``unreadable``: drops those
            files. Every drop is listed in ``Volume.report``.
        min_slices: fewer slices than this is ``too_few_slices``.
        workers: threads for the header scan and pixel reads.

    Raises:
        SeriesError: a problem whose policy is ``error``, several series
            without ``series_uid`` (``several_series``, listing them), or
            nothing left to load.
    """
    if not isinstance(path, (str, os.PathLike)):
        path = [os.fspath(p) for p in path]
    where = (os.fspath(path) if isinstance(path, (str, os.PathLike))
             else f'{len(path)} files')
    run = _Run(where, _policies(on_problem))
    try:
        files = list_dicom_files(path)
    except (DicomReadError, OSError) as exc:
        raise SeriesError(f'{where}: cannot list the files ({exc})',
                          'unreadable') from exc
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        raise SeriesError(f'{where}: no such file or folder', 'unreadable')
    headers, bad = scan_headers(files, workers)
    for item in bad:
        run.report.skipped.append((item.path, item.reason))
    if bad:
        names = '; '.join(b.reason for b in bad[:5])
        run.problem('unreadable', f'{len(bad)} file(s) are not readable DICOM '
                    f'images and were skipped: {names}'
                    + (' ...' if len(bad) > 5 else ''))
    for h in headers:
        run.report.notes += h.notes if h.frame == 0 else []
    slices = _pick_series(run, headers, series_uid)
    slices = _complete(run, slices)
    slices = _one_grid(run, slices)
    slices = _unique_positions(run, slices, series_uid)
    if len(slices) < min_slices:
        run.problem('too_few_slices', f'{len(slices)} slice(s), at least '
                    f'{min_slices} needed')
        if not slices:
            raise run.fatal('too_few_slices', 'no slices left')
    from .series_build import build_volume
    return build_volume(run, slices, workers)


def _pick_series(run: _Run, headers: list[SliceHeader],
                 series_uid: str | None) -> list[SliceHeader]:
    localizers = [h for h in headers if h.is_localizer]
    for h in localizers:
        run.report.dropped.append((h.where, 'localizer (ImageType)'))
    images = [h for h in headers if not h.is_localizer]
    by_uid: dict[str, list[SliceHeader]] = defaultdict(list)
    for h in images:
        by_uid[h.series_uid or '(no SeriesInstanceUID)'].append(h)
    if not images:
        why = (f'{len(localizers)} localizer(s) dropped and nothing else'
               if localizers else 'no DICOM image files found')
        raise run.fatal('too_few_slices', why)
    if series_uid is not None:
        uid = series_uid.split('#')[0]
        if uid not in by_uid:
            raise SeriesError(
                f"{run.where}: no series '{uid}'; series found: "
                + _describe(by_uid), 'series_not_found', list(by_uid))
        return by_uid[uid]
    if len(by_uid) > 1:
        raise SeriesError(
            f'{run.where}: {len(by_uid)} series found; pass series_uid= one '
            f'of: {_describe(by_uid)}', 'several_series', list(by_uid))
    return images


def _describe(by_uid: dict[str, list[SliceHeader]]) -> str:
    return '; '.join(f'{uid} ({len(hs)} slice(s), {hs[0].modality or "?"}, '
                     f'e.g. {hs[0].path})' for uid, hs in by_uid.items())


def _complete(run: _Run, slices: list[SliceHeader]) -> list[SliceHeader]:
    broken = [h for h in slices if h.missing]
    if not broken:
        return slices
    detail = '; '.join(f'{h.where} lacks {", ".join(h.missing)}'
                       for h in broken[:5])
    run.problem('missing_attribute', f'{len(broken)} of {len(slices)} '
                f'slice(s) lack pixels or geometry: {detail}')
    for h in broken:
        run.report.dropped.append((h.where, 'missing ' + ', '.join(h.missing)))
    return [h for h in slices if not h.missing]


def _grid_key(h: SliceHeader) -> tuple:
    return (h.frame_of_reference_uid, h.rows, h.cols, h.samples_per_pixel,
            tuple(np.round(h.pixel_spacing, 4)))


def _one_grid(run: _Run, slices: list[SliceHeader]) -> list[SliceHeader]:
    groups: list[list[SliceHeader]] = []
    for h in slices:
        for group in groups:
            g = group[0]
            if _grid_key(g) == _grid_key(h) and geo.same_orientation(
                    g.orientation, h.orientation):
                group.append(h)
                break
        else:
            groups.append([h])
    if len(groups) <= 1:
        return slices
    groups.sort(key=len, reverse=True)
    desc = '; '.join(
        f'{len(g)} slice(s) with orientation '
        f'{(np.round(g[0].orientation, 4) + 0.0).tolist()}, '
        f'{g[0].rows}x{g[0].cols}, '
        f'frame of reference {g[0].frame_of_reference_uid}' for g in groups)
    run.problem('mixed_orientation', f'slices do not share one grid '
                f'(orientation, size, spacing or frame of reference): {desc}'
                '; kept the largest group')
    for g in groups[1:]:
        for h in g:
            run.report.dropped.append((h.where, 'not on the largest grid'))
    return groups[0]


def _unique_positions(run: _Run, slices: list[SliceHeader],
                      series_uid: str | None) -> list[SliceHeader]:
    def duplicated(hs: list[SliceHeader]) -> bool:
        keys = Counter(tuple(np.round(h.position, 2)) for h in hs)
        return any(n > 1 for n in keys.values())

    if not duplicated(slices):
        return slices
    wanted = series_uid.split('#', 1)[1] if series_uid and '#' in series_uid \
        else None
    for attr in ('echo', 'temporal', 'acquisition'):
        parts: dict[str, list[SliceHeader]] = defaultdict(list)
        for h in slices:
            parts[f'{attr}={getattr(h, attr)}'].append(h)
        if len(parts) > 1 and not any(duplicated(p) for p in parts.values()):
            if wanted in parts:
                return parts[wanted]
            uid = slices[0].series_uid
            labels = [f'{uid}#{k}' for k in parts]
            raise SeriesError(
                f'{run.where}: series {uid} holds {len(parts)} volumes at the '
                f'same positions (by {attr}); pass series_uid= one of: '
                + ', '.join(labels), 'several_series', labels)
    seen: dict[tuple, SliceHeader] = {}
    dups = []
    for h in sorted(slices, key=lambda h: (h.path, h.frame)):
        key = tuple(np.round(h.position, 2))
        if key in seen:
            dups.append((h, seen[key]))
        else:
            seen[key] = h
    detail = '; '.join(f'{h.where} and {first.where} at '
                       f'{np.round(h.position, 3).tolist()}'
                       for h, first in dups[:5])
    run.problem('duplicate_position', f'{len(dups)} slice(s) repeat a '
                f'position: {detail}; kept the first file of each position')
    for h, first in dups:
        run.report.dropped.append((h.where, f'same position as {first.where}'))
    return list(seen.values())
