"""The modality transform of grayscale pixels, with every value checked.

Frame by frame: per-frame functional groups, shared functional groups,
top-level Rescale Slope/Intercept, or the Modality LUT Sequence; RT Dose
times Dose Grid Scaling. A value that is not one finite number, or a LUT
whose descriptor does not fit its data, is a :class:`DicomReadError` naming
the attribute (callers that know the file put its path in front).
"""
from __future__ import annotations

import math

import numpy as np

from .problems import DicomReadError, tag_name

__all__ = ['number', 'number_of_frames', 'frame_rescales', 'modality_transform',
           'check_modality_lut']


def _where(path: str) -> str:
    return f'{path}: ' if path else ''


def number(item, keyword: str, default: float | None, path: str = '',
           inside: str = '') -> float | None:
    """``item.keyword`` as one finite float (``default`` when absent or
    empty).

    Raises:
        DicomReadError: several values, not a number, NaN or infinite.
    """
    from pydicom.datadict import tag_for_keyword
    name = tag_name(tag_for_keyword(keyword)) + (f' in {inside}' if inside else '')
    try:
        value = item.get(keyword)
    except Exception as exc:  # corrupted element: pydicom fails converting it
        raise DicomReadError(f'{_where(path)}{name} cannot be read ({exc}); the element '
                             'is corrupted') from exc
    if value is None or value == '':
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == 'MultiValue':
        values = list(value)
        if len(values) != 1:
            raise DicomReadError(f'{_where(path)}{name} has {len(values)} values '
                                 f'({value!r}); it must be one number: fix the header')
        value = values[0]
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise DicomReadError(f'{_where(path)}{name} is {str(value)!r}, not a number; '
                             'fix the header') from exc
    if not math.isfinite(out):
        raise DicomReadError(f'{_where(path)}{name} is {out}: not a finite number, so '
                             'every modality value would be NaN or infinite; fix the header')
    return out


def number_of_frames(ds, path: str = '') -> int:
    """NumberOfFrames as an int (1 when absent)."""
    try:
        value = ds.get('NumberOfFrames')
        return int(value or 1)
    except (TypeError, ValueError) as exc:
        raise DicomReadError(f"{_where(path)}NumberOfFrames (0028,0008) is "
                             f"{ds['NumberOfFrames'].value!r}, not an integer; fix the "
                             'header') from exc
    except Exception as exc:
        raise DicomReadError(f'{_where(path)}NumberOfFrames (0028,0008) cannot be read '
                             f'({exc}); the element is corrupted') from exc


def _rescale_in(item, path: str, inside: str) -> tuple[float, float] | None:
    try:
        seq = item.get('PixelValueTransformationSequence') if item else None
    except Exception as exc:
        raise DicomReadError(f'{_where(path)}PixelValueTransformationSequence in '
                             f'{inside} cannot be read ({exc})') from exc
    if seq and ('RescaleSlope' in seq[0] or 'RescaleIntercept' in seq[0]):
        where = f'{inside} PixelValueTransformationSequence'
        return (number(seq[0], 'RescaleSlope', 1.0, path, where),
                number(seq[0], 'RescaleIntercept', 0.0, path, where))
    return None


def frame_rescales(ds, n_frames: int | None = None, path: str = ''
                   ) -> list[tuple[float, float] | None]:
    """(slope, intercept) of each frame, or None where a Modality LUT (or
    nothing) applies. Order: per-frame functional groups, shared functional
    groups, top-level Rescale Slope/Intercept.

    Raises:
        DicomReadError: a slope or intercept that is not one finite number.
    """
    n = number_of_frames(ds, path) if n_frames is None else n_frames
    per_frame = ds.get('PerFrameFunctionalGroupsSequence') or []
    shared = ds.get('SharedFunctionalGroupsSequence') or []
    top = None
    if 'RescaleSlope' in ds or 'RescaleIntercept' in ds:
        top = (number(ds, 'RescaleSlope', 1.0, path),
               number(ds, 'RescaleIntercept', 0.0, path))
    shared_rescale = (_rescale_in(shared[0], path, 'SharedFunctionalGroupsSequence')
                      if shared else None)
    out = []
    for i in range(n):
        own = (_rescale_in(per_frame[i], path,
                           f'PerFrameFunctionalGroupsSequence item {i + 1}')
               if i < len(per_frame) else None)
        out.append(own or shared_rescale or top)
    return out


def check_modality_lut(ds, path: str = '') -> None:
    """The first Modality LUT Sequence item has a three-value descriptor
    (entries, first mapped value, 8 or 16 bits) and that many entries."""
    item = ds.ModalityLUTSequence[0]
    where = f'{_where(path)}ModalityLUTSequence (0028,3000) item 1'
    try:
        descriptor = item.get('LUTDescriptor')
        data = item.get('LUTData')
    except Exception as exc:
        raise DicomReadError(f'{where}: LUT cannot be read ({exc})') from exc
    values = list(descriptor) if descriptor is not None else []
    if len(values) != 3 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise DicomReadError(f'{where}: LUTDescriptor (0028,3002) is {descriptor!r}; it '
                             'must be 3 numbers (entries, first mapped value, bits)')
    entries, _, bits = (int(v) for v in values)
    entries = entries or 65536
    if bits not in (8, 16):
        raise DicomReadError(f'{where}: LUTDescriptor (0028,3002) gives {bits} bits per '
                             'LUT entry; only 8 or 16 are valid')
    if data is None:
        raise DicomReadError(f'{where}: no LUTData (0028,3006) for the LUT')
    if isinstance(data, (bytes, bytearray)):
        count = len(data) // (2 if bits == 16 else 1)
    else:
        count = len(data) if hasattr(data, '__len__') else 1
    if count < entries:
        raise DicomReadError(f'{where}: LUTDescriptor (0028,3002) announces {entries} '
                             f'entries but LUTData (0028,3006) holds {count}')


def modality_transform(arr: np.ndarray, ds, frames_first: bool, path: str = ''
                       ) -> np.ndarray:
    """Apply the modality transform frame by frame; float32 result.

    Args:
        arr: grayscale stored values, (rows, cols) or (frames, rows, cols).
        ds: the dataset the values came from.
        frames_first: whether ``arr`` has a leading frame axis.
        path: the file, for error messages.

    Raises:
        DicomReadError: malformed slope, intercept, dose scaling or LUT.
    """
    from pydicom.pixels import apply_modality_lut
    frames = arr if frames_first else arr[None]
    rescales = frame_rescales(ds, len(frames), path)
    dose = number(ds, 'DoseGridScaling', None, path)
    lut = any(r is None for r in rescales) and bool(ds.get('ModalityLUTSequence'))
    if lut:
        check_modality_lut(ds, path)
    out = np.empty(frames.shape, np.float32)
    for i, frame in enumerate(frames):
        if rescales[i] is not None:
            slope, intercept = rescales[i]
            # float64 then round once, as pydicom's path does
            value = frame.astype(np.float64) * slope + intercept
        elif lut:
            try:
                value = apply_modality_lut(frame, ds)
            except Exception as exc:
                raise DicomReadError(f'{_where(path)}ModalityLUTSequence (0028,3000): '
                                     f'the LUT cannot be applied ({exc})') from exc
        else:
            value = frame
        out[i] = value if dose is None else np.multiply(value, dose,
                                                        dtype=np.float64)
    return out if frames_first else out[0]
