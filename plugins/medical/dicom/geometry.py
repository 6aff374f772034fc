"""Geometry checks and fixes for a stack of slices: spacing from positions,
runs of even spacing, gantry tilt, resampling onto a regular grid.

Used by the series loader (:mod:`~perception_medical.dicom.series` and
:mod:`~perception_medical.dicom.series_build`); everything works on the
sorted slice positions (LPS mm) and the slice normal.
"""
from __future__ import annotations

import numpy as np

SPACING_RTOL = 0.01     # 1 % of the slice spacing
SPACING_ATOL = 1e-3     # mm: positions are written with ~6 decimals
TILT_TOL = 1e-3         # rad (0.06 degrees)


def slice_normal(orientation: np.ndarray) -> np.ndarray:
    """Unit normal (row direction x column direction)."""
    n = np.cross(orientation[:3], orientation[3:])
    return n / np.linalg.norm(n)


def same_orientation(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> bool:
    return bool(np.max(np.abs(a - b)) <= tol)


def position_quantum(positions: np.ndarray) -> float:
    """The rounding step of the written positions: 0.01 mm when every
    coordinate has at most 2 decimals (many scanners write them so), finer
    when they carry more; never coarser than 0.01 mm, so coarsely written
    positions still have their gaps found."""
    for decimals in (2, 3, 4, 5, 6):
        scaled = np.asarray(positions, float) * 10 ** decimals
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-4):
            return 10.0 ** -decimals
    return 0.0


def rounding_tolerance(positions: np.ndarray, normal: np.ndarray) -> float:
    """How far a slice-to-slice distance along ``normal`` can be off by the
    rounding of the positions alone (each coordinate +-q/2, two slices)."""
    return position_quantum(positions) * float(np.sum(np.abs(normal)))


def typical_step(diffs: np.ndarray, rounding: float = 0.0) -> float:
    """The most common slice-to-slice distance (to 0.01 mm; ties go to the
    smaller), so a few long gaps cannot pull the reference spacing the way
    a median of few slices would; then the mean of the distances within
    the tolerance of it, so positions rounded to 0.01 mm (0.62 / 0.63 mm
    steps of 0.625 mm slices) give the true step."""
    rounded = np.round(diffs, 2)
    values, counts = np.unique(rounded, return_counts=True)
    best = values[counts == counts.max()].min()
    mode = float(np.median(diffs[rounded == best]))
    near = np.abs(diffs - mode) <= _tolerance(mode, rounding)
    return float(np.mean(diffs[near]))


def _tolerance(step: float, rounding: float) -> float:
    return max(SPACING_ATOL, SPACING_RTOL * abs(step), rounding)


def spacing_gaps(proj: np.ndarray, rounding: float = 0.0
                 ) -> tuple[float, list[tuple[int, str]]]:
    """Typical spacing and the gaps (index k of the gap between slice k and
    k+1, 'missing_slices' or 'uneven_spacing') that break it.

    Args:
        proj: sorted slice positions along the normal (mm).
        rounding: extra tolerance for positions written rounded
            (:func:`rounding_tolerance`).
    """
    diffs = np.diff(proj)
    if not len(diffs):
        return 0.0, []
    step = typical_step(diffs, rounding)
    tol = _tolerance(step, rounding)
    bad = []
    for k, d in enumerate(diffs):
        if abs(d - step) <= tol:
            continue
        bad.append((k, 'missing_slices' if d >= 1.5 * step
                    else 'uneven_spacing'))
    return step, bad


def largest_even_run(proj: np.ndarray, rounding: float = 0.0) -> slice:
    """The longest run of consecutive slices spaced by the typical step."""
    step, bad = spacing_gaps(proj, rounding)
    cuts = [-1] + [k for k, _ in bad] + [len(proj) - 1]
    best = max(zip(cuts[:-1], cuts[1:]), key=lambda c: c[1] - c[0])
    return slice(best[0] + 1, best[1] + 1)


def tilt_angle(positions: np.ndarray, normal: np.ndarray) -> float:
    """Angle (rad) between the slice-to-slice step and the slice normal;
    0 when the sideways offset is within the rounding of the positions."""
    if len(positions) < 2:
        return 0.0
    total = positions[-1] - positions[0]
    step = total / (len(positions) - 1)
    along = float(step @ normal)
    across = float(np.linalg.norm(step - along * normal))
    # first and last position each rounded by up to q/2 per coordinate
    slack = position_quantum(positions) * np.sqrt(3) / (len(positions) - 1)
    across = max(0.0, across - slack)
    return float(np.arctan2(across, abs(along))) if along else np.pi / 2


def resample_z(array: np.ndarray, proj: np.ndarray, step: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along z onto ``proj[0] + k * step``.

    Returns:
        (resampled array, target projections)
    """
    count = int(round((proj[-1] - proj[0]) / step)) + 1
    target = proj[0] + step * np.arange(count)
    hi = np.clip(np.searchsorted(proj, target, side='right'), 1, len(proj) - 1)
    lo = hi - 1
    w = ((target - proj[lo]) / (proj[hi] - proj[lo])).clip(0, 1)
    shape = (-1, ) + (1, ) * (array.ndim - 1)
    out = array[lo] * (1 - w).reshape(shape).astype(np.float32) + \
        array[hi] * w.reshape(shape).astype(np.float32)
    return out.astype(np.float32), target


def shift_inplane(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``out[y, x] = image[y + dy, x + dx]`` with linear interpolation;
    outside the image is filled with the image minimum."""
    rows, cols = image.shape[:2]
    fill = float(image.min())

    def axis_weights(n, d):
        src = np.arange(n) + d
        i0 = np.floor(src).astype(int)
        w = (src - i0).astype(np.float32)
        valid = (src >= 0) & (src <= n - 1)
        return np.clip(i0, 0, n - 1), np.clip(i0 + 1, 0, n - 1), w, valid

    y0, y1, wy, vy = axis_weights(rows, dy)
    x0, x1, wx, vx = axis_weights(cols, dx)
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    out = top * (1 - wy)[:, None] + bottom * wy[:, None]
    out[~vy, :] = fill
    out[:, ~vx] = fill
    return out.astype(np.float32)


def untilt(array: np.ndarray, positions: np.ndarray, row_dir: np.ndarray,
           col_dir: np.ndarray, pixel_spacing: tuple[float, float]
           ) -> np.ndarray:
    """Shift each slice in-plane so that voxel (k, y, x) lies on the
    orthogonal grid through slice 0 (gantry-tilt correction)."""
    out = np.empty_like(array)
    for k in range(len(array)):
        d = positions[k] - positions[0]
        # slice k's pixel (y, x) sits at grid (y + dy_k, x + dx_k)
        dy = float(d @ col_dir) / pixel_spacing[0]
        dx = float(d @ row_dir) / pixel_spacing[1]
        out[k] = shift_inplane(array[k], -dy, -dx)
    return out


def make_affine(origin: np.ndarray, step: np.ndarray, row_dir: np.ndarray,
                col_dir: np.ndarray, pixel_spacing: tuple[float, float]
                ) -> np.ndarray:
    """4x4 mapping (z, y, x, 1) to LPS (x, y, z, 1) mm.

    DICOM: the first IOP triplet is the direction of increasing column index
    (x), the second of increasing row index (y); PixelSpacing is (between
    rows, between columns).
    """
    affine = np.eye(4)
    affine[:3, 0] = step
    affine[:3, 1] = col_dir * pixel_spacing[0]
    affine[:3, 2] = row_dir * pixel_spacing[1]
    affine[:3, 3] = origin
    return affine
