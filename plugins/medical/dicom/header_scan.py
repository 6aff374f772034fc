"""Parallel header index of DICOM files (no pixel reads).

:func:`scan_headers` parses every file up to its pixel data (threads: the
file reads overlap; pydicom's parsing holds the GIL) and returns one
:class:`SliceHeader` per frame of each image file, or an
:class:`Unreadable` naming the file and why. For native (uncompressed) files
it also records where the pixel bytes start, so the series loader can read
them straight into its output buffer.
"""
from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .fast_header import read_fast_header
from .reading import NATIVE_SYNTAXES, DicomReadError, captured_warnings, frame_rescales, open_dicom

__all__ = ['SliceHeader', 'Unreadable', 'scan_headers', 'list_dicom_files']

PIXEL_KEYWORDS = ((0x0010, 'PixelData'), (0x0008, 'FloatPixelData'),
                  (0x0009, 'DoubleFloatPixelData'))
PIXEL_TAGS = {(0x7FE0, e) for e, _ in PIXEL_KEYWORDS}


@dataclass
class Unreadable:
    """A file that is not a DICOM image (or cannot be parsed)."""

    path: str
    reason: str


@dataclass
class SliceHeader:
    """What the series loader needs to know about one frame of one file."""

    path: str
    frame: int                      # frame number inside the file (0-based)
    n_frames: int
    series_uid: str | None
    frame_of_reference_uid: str | None
    sop_class_uid: str | None
    modality: str
    rows: int | None
    cols: int | None
    samples_per_pixel: int
    photometric: str
    orientation: np.ndarray | None  # (6,) row then column direction cosines
    position: np.ndarray | None     # (3,) LPS mm of the first voxel
    pixel_spacing: tuple[float, float] | None   # (between rows, between cols)
    image_type: tuple[str, ...]
    acquisition: str | None
    temporal: str | None
    echo: str | None
    rescale: tuple[float, float] | None
    has_pixels: bool
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # fast raw path (native single-frame grayscale only), else None
    pixel_offset: int | None = None
    raw_dtype: str | None = None
    bit_shift: int = 0
    transfer_syntax: str = ''

    @property
    def is_localizer(self) -> bool:
        return any(t.upper() in ('LOCALIZER', 'SCOUT')
                   for t in self.image_type)

    @property
    def where(self) -> str:
        return self.path if self.n_frames == 1 else \
            f'{self.path} [frame {self.frame + 1}]'


def list_dicom_files(path: str | os.PathLike | Sequence) -> list[str]:
    """Files named by a folder (recursive, hidden files skipped), a DICOMDIR
    or a list of files."""
    if not isinstance(path, (str, os.PathLike)):
        return [os.fspath(p) for p in path]
    path = os.fspath(path)
    if os.path.isdir(path):
        found = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
            found += [os.path.join(root, f) for f in sorted(files)
                      if not f.startswith('.')]
        return found
    if os.path.isfile(path) and _is_dicomdir(path):
        return _dicomdir_files(path)
    return [path]


def _is_dicomdir(path: str) -> bool:
    if os.path.basename(path).upper().startswith('DICOMDIR'):
        return True
    with open(path, 'rb') as f:
        head = f.read(512)
    return b'1.2.840.10008.1.3.10' in head  # Media Storage Directory SOP


def _dicomdir_files(path: str) -> list[str]:
    """Image files referenced by a DICOMDIR, relative to its folder."""
    ds = open_dicom(path)
    root = os.path.dirname(os.path.abspath(path))
    out = []
    for record in ds.get('DirectoryRecordSequence') or []:
        ref = record.get('ReferencedFileID')
        if not ref:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        out.append(_resolve(root, parts))
    if not out:
        raise DicomReadError(f'{path}: the DICOMDIR references no files')
    return out


def _resolve(root: str, parts: list[str]) -> str:
    """A DICOMDIR file ID on disk; media written on one system and mounted
    on another often change the case of names."""
    path = os.path.join(root, *parts)
    if os.path.exists(path):
        return path
    current = root
    for part in parts:
        try:
            names = {n.upper(): n for n in os.listdir(current)}
        except OSError:
            return path
        if part.upper() not in names:
            return path
        current = os.path.join(current, names[part.upper()])
    return current


def _floats(value, n: int) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in value], np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n, ) and np.all(np.isfinite(arr)) else None


def _first(item, seq_name: str, attr: str):
    seq = item.get(seq_name) if item is not None else None
    return seq[0].get(attr) if seq else None


def _pixel_element(fp, little: bool, implicit: bool
                   ) -> tuple[tuple | None, int | None]:
    """At the file position pydicom stopped: (pixel tag or None, value
    length); the offset of the value is fp.tell() afterwards."""
    head = fp.read(8)
    if len(head) < 8:
        return None, None
    end = '<' if little else '>'
    tag = struct.unpack(end + 'HH', head[:4])
    if tag not in PIXEL_TAGS:
        return None, None
    if implicit:
        return tag, struct.unpack(end + 'I', head[4:8])[0]
    if head[4:6] in (b'OB', b'OW', b'OF', b'OD', b'OV', b'UN'):
        return tag, struct.unpack(end + 'I', fp.read(4))[0]
    return tag, struct.unpack(end + 'H', head[6:8])[0]


def _scan_one(path: str, fast: bool = True) -> list[SliceHeader] | Unreadable:
    notes: list[str] = []
    try:
        quick = read_fast_header(path) if fast else None
        if quick is not None:
            values, tsuid, length, offset = quick
            return _headers(path, values, tsuid, (0x7FE0, 0x0010), length,
                            offset, notes)
        with open(path, 'rb') as fp:
            ds = open_dicom(path, stop_before_pixels=True, notes=notes,
                            fileobj=fp)
            tsuid = str(ds.file_meta.TransferSyntaxUID)
            with captured_warnings(notes):
                if tsuid == '1.2.840.10008.1.2.1.99':  # deflated: no offsets
                    full = open_dicom(path)
                    tag = next(((0x7FE0, e) for e, k in PIXEL_KEYWORDS
                                if k in full), None)
                    length = None
                else:
                    implicit, little = ds.original_encoding
                    tag, length = _pixel_element(
                        fp, bool(little), bool(implicit))
                offset = fp.tell()
                return _headers(path, ds, tsuid, tag, length, offset, notes)
    except DicomReadError as exc:
        return Unreadable(path, str(exc))
    except OSError as exc:
        return Unreadable(path, f'{path}: cannot open ({exc.strerror})')
    except Exception as exc:  # malformed values deep in pydicom
        return Unreadable(path, f'{path}: header cannot be parsed '
                          f'({type(exc).__name__}: {exc})')


def _headers(path, ds, tsuid, pixel_tag, length, offset, notes
             ) -> list[SliceHeader] | Unreadable:
    from pydicom.uid import UID
    has_pixels = pixel_tag is not None
    sop = str(ds.get('SOPClassUID') or '')
    sop_name = UID(sop).name if sop else ''
    is_image = has_pixels or 'Image' in sop_name or 'Rows' in ds
    if not is_image or 'DirectoryRecordSequence' in ds:
        what = sop_name or sop or 'unknown SOP class'
        return Unreadable(path, f'{path}: not an image ({what})')
    n_frames = _frame_count(path, ds, tsuid)
    shared = (ds.get('SharedFunctionalGroupsSequence') or [None])[0]
    per_frame = ds.get('PerFrameFunctionalGroupsSequence') or []
    orient_top = ds.get('ImageOrientationPatient')
    spacing_top = ds.get('PixelSpacing')
    pos_top = _floats(ds.get('ImagePositionPatient') or (), 3)
    offsets = ds.get('GridFrameOffsetVector')
    rescales = frame_rescales(ds, n_frames, path)
    # what read_dicom needs to decode (PixelRepresentation: integer pixels)
    pixel_module_gaps = [k for k in ('BitsAllocated', 'SamplesPerPixel',
                                     'PhotometricInterpretation')
                         if ds.get(k) in (None, '')]
    if pixel_tag == (0x7FE0, 0x0010) and \
            ds.get('PixelRepresentation') is None:
        pixel_module_gaps.append('PixelRepresentation')
    base = dict(
        path=path, n_frames=n_frames,
        series_uid=str(ds.get('SeriesInstanceUID') or '') or None,
        frame_of_reference_uid=(str(ds.get('FrameOfReferenceUID') or '')
                                or None),
        sop_class_uid=sop or None, modality=str(ds.get('Modality') or ''),
        rows=ds.get('Rows'), cols=ds.get('Columns'),
        samples_per_pixel=int(ds.get('SamplesPerPixel') or 1),
        photometric=str(ds.get('PhotometricInterpretation') or ''),
        image_type=tuple(str(t) for t in (ds.get('ImageType') or ())),
        acquisition=_str(ds.get('AcquisitionNumber')),
        temporal=_str(ds.get('TemporalPositionIdentifier')),
        echo=_str(ds.get('EchoNumbers')), has_pixels=has_pixels,
        notes=notes, transfer_syntax=tsuid)
    out = []
    for i in range(n_frames):
        item = per_frame[i] if i < len(per_frame) else None
        orient = (_first(item, 'PlaneOrientationSequence',
                         'ImageOrientationPatient')
                  or _first(shared, 'PlaneOrientationSequence',
                            'ImageOrientationPatient') or orient_top)
        pos = _first(item, 'PlanePositionSequence', 'ImagePositionPatient')
        spacing = (_first(item, 'PixelMeasuresSequence', 'PixelSpacing')
                   or _first(shared, 'PixelMeasuresSequence', 'PixelSpacing')
                   or spacing_top)
        orient = _floats(orient or (), 6)
        position = _floats(pos, 3) if pos else pos_top
        if pos is None and offsets and position is not None and \
                orient is not None and n_frames > 1:
            position = _dose_position(position, orient, offsets, i)
        spacing = _floats(spacing or (), 2)
        missing = [name for name, v in (
            ('PixelData', has_pixels or None), ('Rows', base['rows']),
            ('Columns', base['cols']), ('ImageOrientationPatient', orient),
            ('ImagePositionPatient', position), ('PixelSpacing', spacing))
            if v is None] + pixel_module_gaps
        echo = _first(item, 'MREchoSequence', 'EffectiveEchoTime')
        temporal = _first(item, 'FrameContentSequence',
                          'TemporalPositionIndex')
        header = SliceHeader(
            frame=i, orientation=orient, position=position,
            pixel_spacing=None if spacing is None else tuple(spacing),
            rescale=rescales[i], missing=missing, **base)
        if echo is not None:
            header.echo = _str(echo)
        if temporal is not None:
            header.temporal = _str(temporal)
        out.append(header)
    if n_frames == 1 and has_pixels and length is not None:
        _plan_raw_read(out[0], ds, tsuid, length, offset)
    return out


def _frame_count(path: str, ds, tsuid: str) -> int:
    """NumberOfFrames, refused when the file is too small to hold that many
    frames (a corrupted count would otherwise make one header per frame,
    10**9 of them)."""
    raw = ds.get('NumberOfFrames')
    try:
        n = int(raw or 1)
    except (TypeError, ValueError):
        raise DicomReadError(f'{path}: NumberOfFrames (0028,0008) is {raw!r}, not an '
                             'integer; fix the header') from None
    if n < 1:
        raise DicomReadError(f'{path}: NumberOfFrames (0028,0008) is {n}; it must be >= 1')
    try:
        rows, cols = int(ds.get('Rows') or 1), int(ds.get('Columns') or 1)
        spp, bits = int(ds.get('SamplesPerPixel') or 1), int(ds.get('BitsAllocated') or 8)
    except (TypeError, ValueError):
        rows = cols = spp = bits = 1
    frame_bytes = max(1, rows * cols * spp * bits // 8)
    if tsuid in NATIVE_SYNTAXES:
        need = frame_bytes
    elif tsuid == '1.2.840.10008.1.2.1.99':
        need = max(1, frame_bytes // 1032)   # deflate's best ratio
    else:
        need = 8                             # an item header per frame at least
    size = os.path.getsize(path)
    if n > 1 and n * need > size:
        raise DicomReadError(f'{path}: NumberOfFrames (0028,0008) is {n} but the file has '
                             f'{size} bytes, too few for that many frames; the header is '
                             'corrupted')
    return n


def _str(value) -> str | None:
    """Grouping key of an IS value: '04' and 4 are the same number."""
    if value in (None, ''):
        return None
    try:
        return str(int(float(str(value))))
    except (TypeError, ValueError):
        return str(value)


def _dose_position(position, orient, offsets, i) -> np.ndarray | None:
    """RT Dose frame position from GridFrameOffsetVector: relative to the
    IPP along the normal when the first offset is 0, else absolute."""
    vals = _floats(offsets, len(offsets)) if offsets else None
    if vals is None or i >= len(vals):
        return None
    normal = np.cross(orient[:3], orient[3:])
    if vals[0] == 0:
        return position + vals[i] * normal
    return position + (vals[i] - float(position @ normal)) * normal


def _plan_raw_read(header: SliceHeader, ds, tsuid: str, length: int,
                   offset: int) -> None:
    """Record offset and dtype where the bytes can be read with numpy and
    give exactly what pydicom's native decoder gives."""
    if tsuid not in NATIVE_SYNTAXES or header.samples_per_pixel != 1:
        return
    if header.photometric.upper() not in ('MONOCHROME1', 'MONOCHROME2'):
        return
    if ds.get('ModalityLUTSequence') or 'DoseGridScaling' in ds:
        return
    if header.missing or ds.get('BitsStored') is None:
        return
    bits = int(ds.get('BitsAllocated') or 0)
    stored = int(ds.get('BitsStored'))
    signed = int(ds.get('PixelRepresentation') or 0) == 1
    if bits not in (8, 16, 32) or not 0 < stored <= bits or \
            not header.rows or not header.cols:
        return
    expected = header.rows * header.cols * bits // 8
    if length not in (expected, expected + 1):  # else let pydicom explain
        return
    little = NATIVE_SYNTAXES[tsuid][1]
    header.raw_dtype = ('<' if little else '>') + ('i' if signed else 'u') \
        + str(bits // 8)
    header.pixel_offset = offset
    header.bit_shift = max(0, bits - stored)


def scan_headers(paths: Iterable[str], workers: int | None = None
                 ) -> tuple[list[SliceHeader], list[Unreadable]]:
    """Index files in parallel.

    Args:
        paths: files to scan.
        workers: threads (default: 2 x CPU count, at most 16).

    Returns:
        (one SliceHeader per frame of every image file, the unreadable files)
    """
    paths = list(paths)
    workers = workers or min(16, 2 * (os.cpu_count() or 1))
    if len(paths) < 8 or workers == 1:
        results = [_scan_one(p) for p in paths]
    else:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(_scan_one, paths, chunksize=8))
    headers, bad = [], []
    for result in results:
        if isinstance(result, Unreadable):
            bad.append(result)
        else:
            headers += result
    return headers, bad
