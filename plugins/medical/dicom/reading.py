"""Reading one DICOM file into pixels in modality units.

:func:`read_dicom` decodes with pydicom's pixel path (the default decoders:
pylibjpeg, pylibjpeg-openjpeg, pylibjpeg-rle, python-gdcm), resolves the
modality transform frame by frame (per-frame functional groups, shared
functional groups, top-level Rescale Slope/Intercept, Modality LUT Sequence;
RT Dose times Dose Grid Scaling) and returns float32 in native byte order.
Everything that cannot be read raises :class:`DicomReadError` naming the file
and the reason; pydicom's warnings about broken data are captured per thread
and either explain the error or are handed back as recorded problems.
"""
from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np

from perception.errors import UserError

__all__ = ['DicomReadError', 'DicomProblemWarning', 'read_dicom', 'read_slice',
           'open_dicom', 'frame_rescales', 'modality_transform']

GPL_HINT = ("pip install 'perception-toolkit[gpl]' (installs "
            'pylibjpeg-libjpeg, GPL-3.0)')
# Transfer syntax -> (name, pip package that decodes it).
DECODER_PACKAGES = {
    '1.2.840.10008.1.2.4.50': ('JPEG Baseline', 'pylibjpeg-libjpeg or '
                               'python-gdcm (pip install python-gdcm)'),
    '1.2.840.10008.1.2.4.51': ('JPEG Extended (12-bit)', GPL_HINT),
    '1.2.840.10008.1.2.4.57': ('JPEG Lossless', 'python-gdcm'),
    '1.2.840.10008.1.2.4.70': ('JPEG Lossless SV1', 'python-gdcm'),
    '1.2.840.10008.1.2.4.80': ('JPEG-LS Lossless', 'python-gdcm'),
    '1.2.840.10008.1.2.4.81': ('JPEG-LS Near-Lossless', 'python-gdcm'),
    '1.2.840.10008.1.2.4.90': ('JPEG 2000 Lossless', 'pylibjpeg-openjpeg'),
    '1.2.840.10008.1.2.4.91': ('JPEG 2000', 'pylibjpeg-openjpeg'),
    '1.2.840.10008.1.2.4.201': ('HTJ2K Lossless', 'pylibjpeg-openjpeg'),
    '1.2.840.10008.1.2.4.202': ('HTJ2K Lossless RPCL', 'pylibjpeg-openjpeg'),
    '1.2.840.10008.1.2.4.203': ('HTJ2K', 'pylibjpeg-openjpeg'),
    '1.2.840.10008.1.2.5': ('RLE Lossless', 'pylibjpeg-rle'),
}
PIXEL_KEYWORDS = ('PixelData', 'FloatPixelData', 'DoubleFloatPixelData')
REQUIRED = ('Rows', 'Columns', 'BitsAllocated', 'SamplesPerPixel',
            'PhotometricInterpretation')
NATIVE_SYNTAXES = {'1.2.840.10008.1.2': (True, True),
                   '1.2.840.10008.1.2.1': (False, True),
                   '1.2.840.10008.1.2.2': (False, False)}


class DicomReadError(UserError, ValueError):
    """A DICOM file cannot be read; the message names the file, the reason
    and, where a decoder is missing, the pip package to install."""


class DicomProblemWarning(UserWarning):
    """Broken-but-readable data (pydicom warned while reading the file);
    the message names the file."""


# -- per-thread capture of pydicom's warnings ---------------------------
# warnings.catch_warnings() swaps process-wide state, which is wrong when the
# header scan reads files in threads; instead one hook routes each warning to
# the list of the thread that raised it.
_capture = threading.local()
_hook_lock = threading.Lock()
_hook_users = 0
_saved: tuple | None = None


def _route(message, category, filename, lineno, file=None, line=None):
    sink = getattr(_capture, 'sink', None)
    if sink is not None:
        sink.append(str(message))
        return
    original = _saved[0] if _saved is not None else None
    if original is None or original is getattr(warnings,
                                               '_showwarning_orig', None):
        # not ours: hand it to whatever records warnings now (pytest,
        # catch_warnings(record=True)) as if the hook were not there
        warnings._showwarnmsg_impl(warnings.WarningMessage(
            message, category, filename, lineno, file, line))
    else:
        original(message, category, filename, lineno, file, line)


def _filters_changed() -> None:
    # the warnings module caches filter decisions; tell it they changed
    for name in ('_filters_mutated', '_filters_mutated_lock_held'):
        if hasattr(warnings, name):
            getattr(warnings, name)()
            return


@contextmanager
def captured_warnings(sink: list[str]) -> Iterator[list[str]]:
    """Collect warnings raised in this thread into ``sink``."""
    global _hook_users, _saved
    with _hook_lock:
        if _hook_users == 0:
            _saved = (warnings.showwarning, list(warnings.filters))
            warnings.showwarning = _route
            # 'always': the default filter would drop the second file's copy
            warnings.filters.insert(0, ('always', None, Warning, None, 0))
            _filters_changed()
        _hook_users += 1
    previous, _capture.sink = getattr(_capture, 'sink', None), sink
    try:
        yield sink
    finally:
        _capture.sink = previous
        with _hook_lock:
            _hook_users -= 1
            if _hook_users == 0 and _saved is not None:
                warnings.showwarning = _saved[0]
                warnings.filters[:] = _saved[1]
                _filters_changed()
                _saved = None


# -- opening -------------------------------------------------------------
def _fail(path: str, reason: str, notes: Sequence[str] = ()) -> DicomReadError:
    extra = f" (pydicom warned: {'; '.join(notes)})" if notes else ''
    return DicomReadError(f'{path}: {reason}{extra}')


def _check_bare_dataset(path: str, fileobj, notes: list[str]) -> None:
    """A file without preamble must start like a dataset (group 0002 or
    0008, either byte order) before pydicom is forced through it: forcing
    a large unrelated file only produces junk, slowly."""
    if fileobj is not None:
        fileobj.seek(0)
        head = fileobj.read(4)
        fileobj.seek(0)
    else:
        with open(path, 'rb') as f:
            head = f.read(4)
    groups = (int.from_bytes(head[:2], 'little'),
              int.from_bytes(head[:2], 'big'))
    if len(head) < 4 or not {0x0002, 0x0008} & set(groups):
        raise _fail(path, "not a DICOM file: no 'DICM' preamble and it does "
                    f'not start with a DICOM element (first bytes '
                    f'{head.hex() or "none"})', notes)


def open_dicom(path: str | os.PathLike, stop_before_pixels: bool = False,
               notes: list[str] | None = None, fileobj=None):
    """Parse a DICOM file (with or without file meta) into a pydicom Dataset.

    A file without the 'DICM' preamble is parsed with the transfer syntax
    inferred; if that yields no recognisable attributes it is rejected.
    A missing Transfer Syntax UID is filled in from the inferred encoding.

    Raises:
        DicomReadError: not a file, not DICOM, or unparseable.
    """
    import pydicom
    from pydicom import datadict
    from pydicom.errors import InvalidDicomError
    path = os.fspath(path)
    notes = [] if notes is None else notes
    if fileobj is None and not os.path.isfile(path):
        raise DicomReadError(f'{path}: no such file')
    source = path if fileobj is None else fileobj
    with captured_warnings(notes):
        try:
            try:
                ds = pydicom.dcmread(source,
                                     stop_before_pixels=stop_before_pixels)
                preamble = True
            except InvalidDicomError:
                _check_bare_dataset(path, fileobj, notes)
                ds = pydicom.dcmread(source, force=True,
                                     stop_before_pixels=stop_before_pixels)
                preamble = False
        except DicomReadError:
            raise
        except Exception as exc:  # pydicom raises many types for bad bytes
            raise _fail(path, 'not a readable DICOM file '
                        f'({type(exc).__name__}: {exc})', notes) from exc
    if not preamble:
        first = next(iter(ds.keys()), None)
        known = first is not None and (first in datadict.DicomDictionary
                                       and first.group in (0x0002, 0x0008))
        if not known or 'SOPClassUID' not in ds:
            raise _fail(path, "not a DICOM file: no 'DICM' preamble and the "
                        'bytes do not parse as a DICOM dataset (no SOP Class '
                        'UID; first element '
                        f'{first if first is not None else "none"})', notes)
    meta = getattr(ds, 'file_meta', None)
    if meta is None or 'TransferSyntaxUID' not in meta:
        implicit, little = ds.original_encoding
        if implicit is None or little is None:
            raise _fail(path, 'no Transfer Syntax UID in the file meta and '
                        'the encoding cannot be inferred', notes)
        from pydicom.dataset import FileMetaDataset
        if meta is None:
            ds.file_meta = meta = FileMetaDataset()
        meta.TransferSyntaxUID = ('1.2.840.10008.1.2' if implicit else
                                  '1.2.840.10008.1.2.1' if little else
                                  '1.2.840.10008.1.2.2')
    return ds


# -- modality transform --------------------------------------------------
def _number_of_frames(ds, path: str = '', notes: Sequence[str] = ()) -> int:
    try:
        return int(ds.get('NumberOfFrames') or 1)
    except (TypeError, ValueError) as exc:
        raise _fail(path, f"NumberOfFrames (0028,0008) is "
                    f"{ds['NumberOfFrames'].value!r}, not an integer; fix the "
                    'header', notes) from exc


def _rescale_in(item) -> tuple[float, float] | None:
    seq = item.get('PixelValueTransformationSequence') if item else None
    if seq and ('RescaleSlope' in seq[0] or 'RescaleIntercept' in seq[0]):
        return (float(seq[0].get('RescaleSlope', 1.0) or 1.0),
                float(seq[0].get('RescaleIntercept', 0.0) or 0.0))
    return None


def frame_rescales(ds, n_frames: int | None = None
                   ) -> list[tuple[float, float] | None]:
    """(slope, intercept) of each frame, or None where a Modality LUT (or
    nothing) applies. Order: per-frame functional groups, shared functional
    groups, top-level Rescale Slope/Intercept."""
    n = _number_of_frames(ds) if n_frames is None else n_frames
    per_frame = ds.get('PerFrameFunctionalGroupsSequence') or []
    shared = ds.get('SharedFunctionalGroupsSequence') or []
    top = None
    if 'RescaleSlope' in ds or 'RescaleIntercept' in ds:
        top = (float(ds.get('RescaleSlope', 1.0) or 1.0),
               float(ds.get('RescaleIntercept', 0.0) or 0.0))
    shared_rescale = _rescale_in(shared[0]) if shared else None
    out = []
    for i in range(n):
        own = _rescale_in(per_frame[i]) if i < len(per_frame) else None
        out.append(own or shared_rescale or top)
    return out


def modality_transform(arr: np.ndarray, ds, frames_first: bool) -> np.ndarray:
    """Apply the modality transform frame by frame; float32 result.

    Args:
        arr: grayscale stored values, (rows, cols) or (frames, rows, cols).
        ds: the dataset the values came from.
        frames_first: whether ``arr`` has a leading frame axis.
    """
    from pydicom.pixels import apply_modality_lut
    frames = arr if frames_first else arr[None]
    rescales = frame_rescales(ds, len(frames))
    dose = float(ds.DoseGridScaling) if 'DoseGridScaling' in ds else None
    out = np.empty(frames.shape, np.float32)
    for i, frame in enumerate(frames):
        if rescales[i] is not None:
            slope, intercept = rescales[i]
            # float64 then round once, as pydicom's path does
            value = frame.astype(np.float64) * slope + intercept
        elif ds.get('ModalityLUTSequence'):
            value = apply_modality_lut(frame, ds)
        else:
            value = frame
        out[i] = value if dose is None else np.multiply(value, dose,
                                                        dtype=np.float64)
    return out if frames_first else out[0]


# -- decoding ------------------------------------------------------------
def _decoder_error(path: str, ds, exc: Exception, notes: list[str]
                   ) -> DicomReadError:
    from pydicom.pixels.decoders.base import get_decoder
    from pydicom.uid import UID
    tsuid = UID(str(ds.file_meta.TransferSyntaxUID))
    name, package = DECODER_PACKAGES.get(str(tsuid), (tsuid.name, None))
    try:
        available = get_decoder(tsuid).available_plugins
    except Exception:  # no decoder class at all for this syntax
        available = ()
    ts = f"transfer syntax '{name}' ({tsuid})"
    detail = str(exc).replace('\n', ' ')[:300]
    if str(tsuid) == '1.2.840.10008.1.2.4.51' and int(
            ds.get('BitsStored', 8) or 8) > 8:
        return _fail(path, f'cannot decode 12-bit {ts}: only the GPL '
                     f'decoder pylibjpeg-libjpeg reads it; install it with '
                     f'{GPL_HINT} ({detail})', notes)
    if not available:
        how = (f'install {package}' if package else
               'no Python decoder exists for it; convert the file with '
               "dcmtk's dcmdjpeg/dcmconv or gdcmconv --raw")
        return _fail(path, f'no decoder installed for {ts}: {how} '
                     f'({detail})', notes)
    return _fail(path, f'pixel data could not be decoded ({ts}; decoders '
                 f'tried: {", ".join(available)}): {detail}', notes)


def _check_image(path: str, ds, notes: list[str]) -> str:
    keyword = next((k for k in PIXEL_KEYWORDS if k in ds), None)
    if keyword is None:
        sop = ds.get('SOPClassUID')
        what = getattr(sop, 'name', None) or sop or 'unknown SOP class'
        if 'DirectoryRecordSequence' in ds:
            what = 'a DICOMDIR (use load_series on it)'
        raise _fail(path, f'not an image: {what} has no Pixel Data '
                    '(7FE0,0010)', notes)
    missing = [k for k in REQUIRED if ds.get(k) in (None, '')]
    if keyword == 'PixelData' and ds.get('PixelRepresentation') is None:
        missing.append('PixelRepresentation')
    if missing:
        raise _fail(path, 'missing required attribute(s) ' + ', '.join(
            missing) + ' (Image Pixel module); the file is incomplete', notes)
    return keyword


def read_dicom(path: str | os.PathLike,
               problems: list[str] | None = None) -> np.ndarray:
    """One file's pixels in modality units (HU for CT).

    Args:
        path: a DICOM file (with or without file meta).
        problems: if given, readable-but-broken findings (pydicom warnings)
            are appended here; otherwise they are issued as
            :class:`DicomProblemWarning` naming the file.

    Returns:
        float32, native byte order: (rows, cols), (frames, rows, cols), or
        (..., 3) RGB for colour (YBR converted, palette applied).
        MONOCHROME1 is never inverted.

    Raises:
        DicomReadError: anything unreadable, with the file and the reason.
    """
    from pydicom.pixels import apply_color_lut
    path = os.fspath(path)
    notes: list[str] = []
    ds = open_dicom(path, notes=notes)
    _check_image(path, ds, notes)
    with captured_warnings(notes):
        n_frames = _number_of_frames(ds, path, notes)
        try:
            arr = ds.pixel_array
        except DicomReadError:
            raise
        except Exception as exc:  # decoders raise many types on bad data
            text = str(exc)
            if 'less than expected' in text or 'truncated' in text.lower():
                raise _fail(path, f'pixel data is truncated ({text})',
                            notes) from exc
            if ds.file_meta.TransferSyntaxUID.is_encapsulated:
                raise _decoder_error(path, ds, exc, notes) from exc
            raise _fail(path, f'pixel data could not be read '
                        f'({type(exc).__name__}: {text})', notes) from exc
    photometric = str(ds.PhotometricInterpretation).upper()
    colour = int(ds.SamplesPerPixel) > 1
    if photometric == 'PALETTE COLOR':
        try:
            with captured_warnings(notes):
                arr = apply_color_lut(arr, ds)
        except Exception as exc:
            raise _fail(path, f'palette colour lookup failed ({exc})',
                        notes) from exc
        out = arr.astype(np.float32)
    elif colour:
        out = arr.astype(np.float32)
    else:
        out = modality_transform(arr, ds, frames_first=n_frames > 1)
    if notes:
        found = [f'{path}: {n}' for n in notes]
        if problems is not None:
            problems.extend(found)
        else:
            for text in found:
                warnings.warn(text, DicomProblemWarning, stacklevel=2)
    return out


def read_slice(path: str | os.PathLike, frame: int = -1,
               problems: list[str] | None = None) -> np.ndarray:
    """One slice's pixels in modality units: the one reader of the CT
    datasets (training) and the ``dicom`` frame source.

    Args:
        path: a DICOM file.
        frame: 0-based frame of a multi-frame file; -1 for a single-frame
            file.
        problems: as in :func:`read_dicom`.

    Returns:
        float32 (rows, cols).

    Raises:
        DicomReadError: unreadable, or not a grayscale slice (the message
            names the file and the shape).
    """
    pixels = read_dicom(path, problems=problems)
    if frame >= 0:
        if pixels.ndim != 3 or frame >= len(pixels):
            raise DicomReadError(
                f'{os.fspath(path)}: no frame {frame + 1} in pixels of shape '
                f'{pixels.shape}; the series index is stale (delete it)')
        pixels = pixels[frame]
    if pixels.ndim != 2:
        raise DicomReadError(
            f'{os.fspath(path)}: pixels have shape {pixels.shape}; CT slices '
            'must be grayscale (one sample per pixel, one frame per slice)')
    return pixels.astype(np.float32, copy=False)
