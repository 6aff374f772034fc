"""Reading one DICOM file into pixels in modality units.

:func:`read_dicom` checks the header and decodes with pydicom's pixel path
(:mod:`~perception_medical.dicom.decoding`: the more robust installed decoder
first, panics caught; optionally in a worker process,
:mod:`~perception_medical.dicom.isolation`), resolves the modality transform
frame by frame (:mod:`~perception_medical.dicom.modality`) and returns
float32 in native byte order.
Everything that cannot be read raises :class:`DicomReadError` naming the file
and the reason; pydicom's warnings about broken data are captured per thread
and either explain the error or are handed back as recorded problems.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .decoding import DECODER_PACKAGES, GPL_HINT, decode_pixels
from .modality import frame_rescales, modality_transform, number_of_frames
from .problems import DicomProblemWarning, DicomReadError, captured_warnings, fail, tag_name

__all__ = ['DicomReadError', 'DicomProblemWarning', 'read_dicom', 'read_slice',
           'open_dicom', 'frame_rescales', 'modality_transform', 'captured_warnings',
           'DECODER_PACKAGES', 'GPL_HINT']

PIXEL_KEYWORDS = ('PixelData', 'FloatPixelData', 'DoubleFloatPixelData')
REQUIRED = ('Rows', 'Columns', 'BitsAllocated', 'SamplesPerPixel',
            'PhotometricInterpretation')
NATIVE_SYNTAXES = {'1.2.840.10008.1.2': (True, True),
                   '1.2.840.10008.1.2.1': (False, True),
                   '1.2.840.10008.1.2.2': (False, False)}
_fail = fail


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
        # (0008,0000), a group length (PS3.5 7.2), is not in the dictionary
        known = first is not None and first.group in (0x0002, 0x0008) and (
            first in datadict.DicomDictionary or first.element == 0)
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


# -- reading ----------------------------------------------------------
# what read_dicom uses: image pixel / LUTs, RT dose, functional groups,
# pixel data, and the SOP Class UID
_USED_GROUPS = (0x0028, 0x3004, 0x5200, 0x7FE0)
_USED_TAGS = (0x00080016, )


def _convert_elements(path: str, ds, notes: list[str]) -> None:
    """Convert the top-level elements the pixel path uses now, so a
    corrupted one (bad VR bytes, undecodable value) is an error naming it,
    not a library exception deep in the pixel path; a file cut inside an
    element is reported as truncated."""
    tags = list(ds.keys())
    for k, tag in enumerate(tags):
        if tag.group not in _USED_GROUPS and tag not in _USED_TAGS and k != len(tags) - 1:
            continue
        try:
            ds[tag]
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types
            why = ('the file is truncated inside it' if k == len(tags) - 1 and
                   tag < 0x7FE00008 else 'the element is corrupted')
            raise fail(path, f'{tag_name(tag)} cannot be read '
                       f'({type(exc).__name__}: {exc}); {why}', notes) from exc


def _check_image(path: str, ds, notes: list[str]) -> str:
    keyword = next((k for k in PIXEL_KEYWORDS if k in ds), None)
    if keyword is None:
        sop = ds.get('SOPClassUID')
        what = getattr(sop, 'name', None) or sop or 'unknown SOP class'
        if 'DirectoryRecordSequence' in ds:
            what = 'a DICOMDIR (use load_series on it)'
        elif 'Image' in str(what) or 'Rows' in ds:
            # a file cut before its pixels reads like an image without any
            size = os.path.getsize(path) if os.path.isfile(path) else 0
            raise fail(path, f'no Pixel Data (7FE0,0010) although {what} is an image: '
                       f'the file is truncated (it ends at byte {size}) or was written '
                       'without pixels; copy it again from its source', notes)
        raise fail(path, f'not an image: {what} has no Pixel Data '
                   '(7FE0,0010)', notes)
    missing = [k for k in REQUIRED if ds.get(k) in (None, '')]
    if keyword == 'PixelData' and ds.get('PixelRepresentation') is None:
        missing.append('PixelRepresentation')
    if missing:
        raise fail(path, 'missing required attribute(s) ' + ', '.join(
            missing) + ' (Image Pixel module); the file is incomplete', notes)
    return keyword


def _check_finite(path: str, out: np.ndarray, notes: list[str]) -> None:
    """NaN or infinite modality values: an error when every value is, a
    recorded problem otherwise (float pixel data may mark missing values)."""
    if out.dtype.kind != 'f':
        return
    bad = int(out.size - np.count_nonzero(np.isfinite(out)))
    if bad == out.size and out.size:
        raise fail(path, 'every modality value is NaN or infinite (check the '
                   'pixel data, RescaleSlope/Intercept and DoseGridScaling)', notes)
    if bad:
        notes.append(f'{bad} of {out.size} modality values are not finite (NaN or inf)')


def read_dicom(path: str | os.PathLike, problems: list[str] | None = None, *,
               isolate: bool = False) -> np.ndarray:
    """One file's pixels in modality units (HU for CT).

    Args:
        path: a DICOM file (with or without file meta).
        problems: if given, readable-but-broken findings (pydicom warnings,
            non-finite values) are appended here; otherwise they are issued
            as :class:`DicomProblemWarning` naming the file.
        isolate: decode in a worker process
            (:mod:`~perception_medical.dicom.isolation`), for untrusted
            archives: a decoder that aborts, hangs or exhausts memory on a
            crafted file becomes a :class:`DicomReadError` for that file and
            the caller goes on.

    Returns:
        float32, native byte order: (rows, cols), (frames, rows, cols), or
        (..., 3) RGB for colour (YBR converted, palette applied).
        MONOCHROME1 is never inverted.

    Raises:
        DicomReadError: anything unreadable, with the file and the reason.
    """
    path = os.fspath(path)
    if isolate:
        from .isolation import read_isolated
        out, found = read_isolated(path)
    else:
        out, found = _read(path)
    if found:
        if problems is not None:
            problems.extend(found)
        else:
            for text in found:
                warnings.warn(text, DicomProblemWarning, stacklevel=2)
    return out


def _read(path: str) -> tuple[np.ndarray, list[str]]:
    """(pixels in modality units, problems found), in this process."""
    notes: list[str] = []
    try:
        ds = open_dicom(path, notes=notes)
        _convert_elements(path, ds, notes)
        keyword = _check_image(path, ds, notes)
        with captured_warnings(notes):
            n_frames = number_of_frames(ds, path)
            arr = decode_pixels(path, ds, keyword, notes)
            out = _to_modality(path, ds, arr, n_frames, notes)
        _check_finite(path, out, notes)
    except DicomReadError:
        raise
    except MemoryError as exc:
        raise fail(path, 'the pixels do not fit in memory', notes) from exc
    except Exception as exc:  # noqa: BLE001 - never a bare library traceback
        raise fail(path, f'malformed file ({type(exc).__name__}: {exc})', notes) from exc
    return out, [f'{path}: {n}' for n in notes]


def stored_pixels(path: str, plugin: str) -> np.ndarray:
    """``path``'s stored pixel values decoded by ``plugin`` alone: what a
    worker process runs for the decoders that can abort
    (:data:`~perception_medical.dicom.decoding.ABORTING_PLUGINS`)."""
    ds = open_dicom(path)
    ds.pixel_array_options(decoding_plugin=plugin)
    return ds.pixel_array


def _to_modality(path: str, ds, arr: np.ndarray, n_frames: int,
                 notes: list[str]) -> np.ndarray:
    from pydicom.pixels import apply_color_lut
    photometric = str(ds.PhotometricInterpretation).upper()
    if photometric == 'PALETTE COLOR':
        try:
            arr = apply_color_lut(arr, ds)
        except Exception as exc:
            raise fail(path, f'palette colour lookup failed ({exc})', notes) from exc
        return arr.astype(np.float32)
    if int(ds.SamplesPerPixel) > 1:
        return arr.astype(np.float32)
    return modality_transform(arr, ds, frames_first=n_frames > 1, path=path)


def read_slice(path: str | os.PathLike, frame: int = -1,
               problems: list[str] | None = None, *,
               isolate: bool = False) -> np.ndarray:
    """One slice's pixels in modality units: the one reader of the CT
    datasets (training) and the ``dicom`` frame source.

    Args:
        path: a DICOM file.
        frame: 0-based frame of a multi-frame file; -1 for a single-frame
            file.
        problems: as in :func:`read_dicom`.
        isolate: decode in a worker process, as in :func:`read_dicom`.

    Returns:
        float32 (rows, cols).

    Raises:
        DicomReadError: unreadable, or not a grayscale slice (the message
            names the file and the shape).
    """
    pixels = read_dicom(path, problems=problems, isolate=isolate)
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
