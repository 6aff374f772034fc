"""Loading a DICOM series into a calibrated volume.

:func:`load_series` indexes the files in parallel (headers only), picks one
series, drops localizers, sorts slices by the projection of
ImagePositionPatient on the slice normal, takes the slice spacing from the
positions (never SliceThickness), checks the geometry and applies the
caller's policy per problem (``error``, ``warn``, ``keep_largest``,
``resample``). Native files are read straight into the output buffer with
numpy; everything else goes through :func:`perception_medical.read_dicom`.
The result types and the policy bookkeeping live in
:mod:`~perception_medical.dicom.volume`; reading the pixels and building the
affine in :mod:`~perception_medical.dicom.series_build`.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Sequence, Union

import numpy as np

from . import geometry as geo
from .header_scan import SliceHeader, list_dicom_files, scan_headers
from .reading import DicomReadError
from .series_build import SeriesGeometry, build_volume, series_geometry, sort_slices
from .volume import (
    CODES,
    POLICIES,
    LoadPolicy,
    OnProblem,
    SeriesError,
    SeriesReport,
    Volume,
    resolve_policies,
)

__all__ = ['load_series', 'series_plan', 'Volume', 'SeriesError', 'SeriesReport',
           'CODES', 'POLICIES']


def load_series(path: Union[str, os.PathLike, Sequence[str]],
                series_uid: str | None = None,
                on_problem: OnProblem = 'error', *,
                min_slices: int = 2, workers: int | None = None,
                isolate: bool = False) -> Volume:
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
        isolate: decode compressed files in worker processes (for untrusted
            archives): a file whose decoder aborts, hangs or runs out of
            memory is ``unreadable`` and the others load.

    Raises:
        SeriesError: a problem whose policy is ``error``, several series
            without ``series_uid`` (``several_series``, listing them), or
            nothing left to load.
    """
    run, slices = _choose_slices(path, series_uid, on_problem, min_slices,
                                 workers)
    return build_volume(run, slices, workers, isolate=isolate)


def series_plan(path: Union[str, os.PathLike, Sequence[str]],
                series_uid: str | None = None,
                on_problem: OnProblem = 'error', *,
                min_slices: int = 2, workers: int | None = None
                ) -> tuple[SeriesGeometry, SeriesReport]:
    """What :func:`load_series` would load, from the headers alone (no
    pixel is read): the slices kept in order, the affine, the spacing and
    the report, with the same policies and problem codes. Pixels that
    cannot be decoded are only found when the slices are read.

    Returns:
        (:class:`~perception_medical.dicom.series_build.SeriesGeometry`,
        :class:`SeriesReport`)

    Raises:
        SeriesError: as :func:`load_series`.
    """
    run, slices = _choose_slices(path, series_uid, on_problem, min_slices,
                                 workers)
    return series_geometry(run, sort_slices(slices)), run.report


def _choose_slices(path, series_uid, on_problem, min_slices, workers
                   ) -> tuple[LoadPolicy, list[SliceHeader]]:
    """Scan the headers, pick the series and its slices (policies applied)."""
    if not isinstance(path, (str, os.PathLike)):
        path = [os.fspath(p) for p in path]
    where = (os.fspath(path) if isinstance(path, (str, os.PathLike))
             else f'{len(path)} files')
    run = LoadPolicy(where, resolve_policies(on_problem))
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
    return run, slices




def _pick_series(run: LoadPolicy, headers: list[SliceHeader],
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


def _complete(run: LoadPolicy, slices: list[SliceHeader]) -> list[SliceHeader]:
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


def _one_grid(run: LoadPolicy, slices: list[SliceHeader]) -> list[SliceHeader]:
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


def _unique_positions(run: LoadPolicy, slices: list[SliceHeader],
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
