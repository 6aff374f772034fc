"""Second half of :func:`perception_medical.load_series`: read the pixels of
the chosen slices, check spacing and tilt, build the affine.

:func:`series_geometry` is the header-only part (spacing, gaps, tilt, the
affine), shared with the CT datasets' series index, which reads no pixels.

Native single-frame grayscale files are read with one ``readinto`` at the
pixel offset found by the header scan into a per-thread buffer, then scaled
into the output volume (float64 then rounded once where the slope is not 1,
so the values equal pydicom's ``apply_modality_lut``); everything else goes
through :func:`perception_medical.read_dicom`.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import geometry as geo
from .header_scan import SliceHeader
from .reading import DicomReadError, read_dicom
from .volume import LoadPolicy, SeriesError, Volume

_local = threading.local()


def _raw_buffer(shape: tuple[int, int], dtype: str) -> np.ndarray:
    buf = getattr(_local, 'buf', None)
    if buf is None or buf.shape != shape or buf.dtype != np.dtype(dtype):
        buf = _local.buf = np.empty(shape, dtype)
    return buf


def _read_raw(h: SliceHeader, out: np.ndarray) -> bool:
    """Read one native slice into ``out`` (float32 (rows, cols))."""
    raw = _raw_buffer((h.rows, h.cols), h.raw_dtype)
    with open(h.path, 'rb', buffering=0) as f:
        f.seek(h.pixel_offset)
        if f.readinto(raw.view(np.uint8)) != raw.nbytes:
            return False      # shorter than announced: read_dicom explains
    if h.bit_shift:           # pydicom's correction of unused high bits
        np.left_shift(raw, h.bit_shift, out=raw)
        np.right_shift(raw, h.bit_shift, out=raw)
    slope, intercept = h.rescale or (1.0, 0.0)
    if slope == 1.0 and float(intercept).is_integer() and raw.itemsize <= 2:
        np.add(raw, np.float32(intercept), out=out)   # exact in float32
    else:
        tmp = raw.astype(np.float64)
        tmp *= slope
        tmp += intercept
        out[...] = tmp
    return True


def _read_pixels(run: LoadPolicy, slices: list[SliceHeader],
                 workers: int | None, isolate: bool = False
                 ) -> tuple[np.ndarray, list[SliceHeader], str]:
    first = slices[0]
    shape = (len(slices), first.rows, first.cols) + (
        (first.samples_per_pixel, ) if first.samples_per_pixel > 1 else ())
    out = np.empty(shape, np.float32)
    ok = np.ones(len(slices), bool)
    fast = [k for k, h in enumerate(slices) if h.pixel_offset is not None]
    by_file: dict[str, list[int]] = {}
    for k, h in enumerate(slices):
        if h.pixel_offset is None:
            by_file.setdefault(h.path, []).append(k)
    failures: list[str] = []
    problems: list[str] = []

    def fast_one(k: int) -> None:
        try:
            if _read_raw(slices[k], out[k]):
                return
        except OSError:
            pass
        by_file_lock_add(k)

    lock = threading.Lock()

    def by_file_lock_add(k: int) -> None:
        with lock:
            by_file.setdefault(slices[k].path, []).append(k)

    def file_one(path: str) -> None:
        ks = by_file[path]
        try:
            arr = read_dicom(path, problems=problems, isolate=isolate)
        except DicomReadError as exc:
            with lock:
                failures.append(str(exc))
                ok[ks] = False
            return
        frames = arr if slices[ks[0]].n_frames > 1 else arr[None]
        for k in ks:
            out[k] = frames[slices[k].frame]

    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    if len(slices) >= 16 and workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fast_one, fast, chunksize=16))
            list(pool.map(file_one, list(by_file)))
    else:
        for k in fast:
            fast_one(k)
        for path in list(by_file):
            file_one(path)
    run.report.notes += problems
    if failures:
        run.problem('unreadable', f'{len(failures)} file(s) of the series '
                    'could not be decoded and were dropped: '
                    + '; '.join(failures[:3]))
        for k in np.flatnonzero(~ok):
            run.report.dropped.append((slices[k].where, 'pixels unreadable'))
    decoder = ('numpy raw read' if not by_file else
               'pydicom' if not fast else 'numpy raw read + pydicom')
    kept = [h for h, good in zip(slices, ok) if good]
    return out[ok] if not ok.all() else out, kept, decoder


@dataclass
class SeriesGeometry:
    """What the headers alone say about a series' volume: the slices kept
    (sorted along the normal), their positions, the affine and spacing,
    and whether building the array resamples it (``untilt``,
    ``z_resample``; ``n_slices`` counts the slices after resampling)."""

    slices: list[SliceHeader]
    positions: np.ndarray
    proj: np.ndarray
    step_len: float
    affine: np.ndarray
    spacing: tuple[float, float, float]
    n_slices: int
    untilt: bool = False
    z_resample: bool = False

    @property
    def resampled(self) -> bool:
        return self.untilt or self.z_resample


def sort_slices(slices: list[SliceHeader]) -> list[SliceHeader]:
    """``slices`` in order along the slice normal."""
    normal = geo.slice_normal(slices[0].orientation)
    return sorted(slices, key=lambda h: float(h.position @ normal))


def series_geometry(run: LoadPolicy, slices: list[SliceHeader]
                    ) -> SeriesGeometry:
    """Spacing, gaps, tilt and the affine of sorted ``slices`` from their
    headers (no pixels), problems handled by ``run``'s policies; the slices
    ``keep_largest`` drops are left out of the result."""
    orient = slices[0].orientation
    row_dir, col_dir = orient[:3], orient[3:]
    normal = geo.slice_normal(orient)
    positions = np.stack([h.position for h in slices])
    proj = positions @ normal
    spacing_rc = slices[0].pixel_spacing
    rounding = geo.rounding_tolerance(positions, normal)
    step_len, gaps = geo.spacing_gaps(proj, rounding)
    gap_policy = None
    if gaps:
        desc = ', '.join(f'{proj[k + 1] - proj[k]:.3f} mm after '
                         f'{slices[k].where}' for k, _ in gaps[:5])
        chosen = {run.problem(kind, f'slice spacing is {step_len:.4g} mm but '
                              f'{len(gaps)} gap(s) differ: {desc}')
                  for kind in sorted({kind for _, kind in gaps})}
        gap_policy = next(p for p in ('keep_largest', 'resample', 'warn')
                          if p in chosen)
        if gap_policy == 'keep_largest':
            keep = geo.largest_even_run(proj, rounding)
            for h in slices[:keep.start] + slices[keep.stop:]:
                run.report.dropped.append((h.where, 'outside the largest '
                                           'evenly spaced run'))
            slices = slices[keep]
            positions, proj = positions[keep], proj[keep]
    tilt = geo.tilt_angle(positions, normal)
    untilt = False
    if tilt > geo.TILT_TOL:
        tilt_policy = run.problem(
            'gantry_tilt', f'slices step {np.degrees(tilt):.2f} degrees off '
            'the slice normal (gantry tilt)')
        untilt = tilt_policy == 'resample'
    z_resample = gap_policy == 'resample' and len(slices) > 1
    n = len(slices)
    if z_resample:   # the count geo.resample_z gives
        n = int(round((proj[-1] - proj[0]) / step_len)) + 1
    if n > 1:
        if untilt or z_resample:
            step = normal * float((proj[-1] - proj[0]) / (n - 1))
        else:
            step = (positions[-1] - positions[0]) / (n - 1)
            if gap_policy == 'warn':
                # slices kept across gaps: the affine uses the typical step
                # (positions holds the truth), along the slices' direction
                step = step * (step_len / float(step @ normal))
    else:
        step = normal   # one slice: no spacing; 1 mm keeps the affine valid
        run.report.notes.append('single slice: z spacing undefined '
                                '(1 mm used)')
    affine = geo.make_affine(positions[0], step, row_dir, col_dir, spacing_rc)
    spacing = (float(np.linalg.norm(step)) if n > 1 else 1.0,
               float(spacing_rc[0]), float(spacing_rc[1]))
    return SeriesGeometry(list(slices), positions, proj, step_len, affine,
                          spacing, n, untilt, z_resample)


def build_volume(run: LoadPolicy, slices: list[SliceHeader],
                 workers: int | None, isolate: bool = False) -> Volume:
    """The :class:`Volume` of the chosen ``slices`` (sorted here along the
    slice normal), problems handled by ``run``'s policies; ``isolate``
    decodes non-native files in worker processes."""
    slices = sort_slices(slices)
    array, slices, decoder = _read_pixels(run, slices, workers, isolate)
    if not slices:
        raise SeriesError(f'{run.where}: unreadable: no slice could be read',
                          'unreadable')
    g = series_geometry(run, slices)
    if len(g.slices) != len(slices):   # keep_largest dropped some
        kept = {id(h) for h in g.slices}
        array = array[np.array([id(h) in kept for h in slices])]
    orient = slices[0].orientation
    if g.untilt:
        array = geo.untilt(array, g.positions, orient[:3], orient[3:],
                           slices[0].pixel_spacing)
    if g.z_resample:
        array, _ = geo.resample_z(array, g.proj, g.step_len)
    n = len(array)
    first = g.slices[0]
    meta = {
        'series_uid': first.series_uid, 'modality': first.modality,
        'sop_class_uid': first.sop_class_uid,
        'photometric_interpretation': first.photometric,
        'transfer_syntax': first.transfer_syntax, 'decoder': decoder,
        'n_slices': n, 'rows': first.rows, 'cols': first.cols,
        'image_orientation': orient.tolist(),
        'slice_spacing_from': 'ImagePositionPatient' if n > 1 else 'none',
        'resampled': bool(g.resampled),
    }
    return Volume(array, g.affine, g.spacing, meta, run.report,
                  [h.where for h in g.slices], g.positions)
