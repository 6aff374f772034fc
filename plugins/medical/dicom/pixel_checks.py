"""Header consistency checks before any pixel is decoded.

Native decoders (gdcm in C++, pylibjpeg-rle in Rust, OpenJPEG, libjpeg) trust
the header: a component count that differs from SamplesPerPixel aborts
gdcm (the whole process, exit 134), RLE segments longer than Rows x Columns
panic in Rust. So before decoding we check, from the header and the
codestream headers alone: the Image Pixel values are in range, Rows x
Columns x frames x samples x bytes agrees with the native data length or
is plausible for the compressed length, and each frame's JPEG / JPEG-LS /
JPEG 2000 / RLE header agrees with Rows, Columns, SamplesPerPixel and
BitsAllocated. Every refusal is a :class:`DicomReadError` naming the file
and the attributes.
"""
from __future__ import annotations

import struct

from .modality import number_of_frames
from .problems import DicomReadError

__all__ = ['check_pixel_header', 'MAX_DECODED_BYTES', 'JPEG_SYNTAXES', 'J2K_SYNTAXES',
           'RLE_SYNTAX']

# A decoded image larger than this is refused as implausible (a corrupted
# Rows / Columns / NumberOfFrames), before a decoder allocates it.
MAX_DECODED_BYTES = 8 << 30
# RLE (PS3.5 G.3): a replicate run of 128 bytes costs 2 bytes
RLE_MAX_RATIO = 64
RLE_SYNTAX = '1.2.840.10008.1.2.5'
JPEG_SYNTAXES = {'1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51',
                 '1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70',
                 '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81'}
J2K_SYNTAXES = {'1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91',
                '1.2.840.10008.1.2.4.92', '1.2.840.10008.1.2.4.93',
                '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202',
                '1.2.840.10008.1.2.4.203'}
_FLOAT_BITS = {'FloatPixelData': 32, 'DoubleFloatPixelData': 64}


def _int(ds, keyword: str, path: str, default: int | None = None) -> int:
    try:
        value = ds.get(keyword)
    except Exception as exc:
        raise DicomReadError(f'{path}: {keyword} cannot be read ({exc}); the element is '
                             'corrupted') from exc
    if value in (None, ''):
        if default is None:
            raise DicomReadError(f'{path}: {keyword} is missing (Image Pixel module)')
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise DicomReadError(f'{path}: {keyword} is {value!r}, not one integer') from exc


def check_pixel_header(path: str, ds, tsuid: str, keyword: str,
                       encapsulated: bool) -> None:
    """Refuse Image Pixel values that cannot describe the stored pixels.

    Args:
        path: the file (for messages).
        ds: its dataset, pixel data included.
        tsuid: the (validated) transfer syntax UID.
        keyword: ``PixelData``, ``FloatPixelData`` or ``DoubleFloatPixelData``.
        encapsulated: whether the pixel data is encapsulated (compressed).

    Raises:
        DicomReadError: naming the file and the inconsistent attributes.
    """
    rows, cols = _int(ds, 'Rows', path), _int(ds, 'Columns', path)
    spp = _int(ds, 'SamplesPerPixel', path)
    bits = _int(ds, 'BitsAllocated', path)
    stored = _int(ds, 'BitsStored', path, default=bits)
    frames = number_of_frames(ds, path)
    for name, value, low, high in (('Rows', rows, 1, 65535), ('Columns', cols, 1, 65535),
                                   ('NumberOfFrames', frames, 1, 2**31 - 1)):
        if not low <= value <= high:
            raise DicomReadError(f'{path}: {name} is {value}; it must be {low}..{high}')
    if spp not in (1, 3):
        raise DicomReadError(f'{path}: SamplesPerPixel is {spp}; only 1 (grayscale) or 3 '
                             '(colour) can be decoded')
    if keyword in _FLOAT_BITS and bits != _FLOAT_BITS[keyword]:
        raise DicomReadError(f'{path}: BitsAllocated is {bits} but {keyword} needs '
                             f'{_FLOAT_BITS[keyword]}')
    if bits != 1 and (bits % 8 or not 8 <= bits <= 64):
        raise DicomReadError(f'{path}: BitsAllocated is {bits}; it must be 1 or a multiple '
                             'of 8 up to 64')
    if not 1 <= stored <= bits:
        raise DicomReadError(f'{path}: BitsStored is {stored}; it must be 1..BitsAllocated '
                             f'({bits})')
    size = f'Rows x Columns x NumberOfFrames x SamplesPerPixel = {rows} x {cols} x ' \
           f'{frames} x {spp}'
    values = rows * cols * frames * spp
    decoded = (values + 7) // 8 if bits == 1 else values * (bits // 8)
    if not encapsulated and spp == 3 and 'YBR_FULL_422' in str(
            ds.get('PhotometricInterpretation', '')).upper():
        decoded = decoded // 3 * 2      # two chroma samples per two pixels
    if decoded > MAX_DECODED_BYTES:
        raise DicomReadError(f'{path}: {size} at BitsAllocated {bits} is {decoded} bytes '
                             'of pixels, implausibly large: the header is corrupted')
    try:
        data = ds[keyword].value
    except Exception as exc:
        raise DicomReadError(f'{path}: {keyword} cannot be read ({exc})') from exc
    if data is None:
        raise DicomReadError(f'{path}: {keyword} is empty')
    if not encapsulated:
        if len(data) < decoded:
            raise DicomReadError(
                f'{path}: pixel data is truncated or the header is inconsistent: {size} '
                f'at BitsAllocated {bits} needs {decoded} bytes but {keyword} holds '
                f'{len(data)}')
        return
    _check_frames(path, ds, tsuid, data, rows, cols, spp, bits, frames, size)


def _frames(path: str, data: bytes, frames: int):
    from pydicom.encaps import generate_frames
    try:
        yield from generate_frames(data, number_of_frames=frames)
    except Exception as exc:
        raise DicomReadError(f'{path}: the encapsulated Pixel Data is malformed ({exc})'
                             ) from exc


def _check_frames(path, ds, tsuid, data, rows, cols, spp, bits, frames, size) -> None:
    seen = 0
    for k, frame in enumerate(_frames(path, data, frames)):
        seen += 1
        where = f'{path}: frame {k + 1}'
        if tsuid == RLE_SYNTAX:
            _check_rle(where, frame, rows, cols, spp, bits)
            continue
        if tsuid in JPEG_SYNTAXES:
            info = _jpeg_header(frame)
            kind = 'JPEG'
        elif tsuid in J2K_SYNTAXES:
            info = _j2k_header(frame)
            kind = 'JPEG 2000'
        else:
            return
        if info is None:
            raise DicomReadError(f'{where}: not a {kind} codestream (no valid frame '
                                 'header); the pixel data is corrupted')
        height, width, components, precision = info
        for name, want, got in (('Rows', rows, height), ('Columns', cols, width),
                                ('SamplesPerPixel', spp, components)):
            if got != want and not (name == 'Rows' and got == 0):  # JPEG DNL: 0
                raise DicomReadError(f'{where}: the {kind} codestream has {name} {got} '
                                     f'but the header says {name} {want}; the header and '
                                     'the pixel data disagree')
        if precision > max(bits, 8) or precision < 1:
            raise DicomReadError(f'{where}: the {kind} codestream holds {precision}-bit '
                                 f'samples but BitsAllocated is {bits}; the header and the '
                                 'pixel data disagree')
    if seen < frames:
        raise DicomReadError(f'{path}: NumberOfFrames is {frames} but the Pixel Data holds '
                             f'{seen} frame(s); the file is truncated or the header wrong')


def _check_rle(where: str, frame: bytes, rows: int, cols: int, spp: int,
               bits: int) -> None:
    if len(frame) < 64:
        raise DicomReadError(f'{where}: the RLE header is cut short ({len(frame)} bytes); '
                             'the pixel data is truncated')
    header = struct.unpack('<16I', frame[:64])
    segments, offsets = header[0], header[1:]
    want = spp * max(bits // 8, 1)
    if segments != want:
        raise DicomReadError(f'{where}: the RLE header lists {segments} segment(s) but '
                             f'SamplesPerPixel x BitsAllocated/8 = {spp} x {bits // 8} '
                             f'needs {want}; the header and the pixel data disagree')
    used = list(offsets[:segments]) + [len(frame)]
    if used[0] != 64 or any(b <= a for a, b in zip(used, used[1:])):
        raise DicomReadError(f'{where}: the RLE segment offsets {list(offsets[:segments])} '
                             f'do not fit the {len(frame)}-byte frame; the pixel data is '
                             'corrupted')
    smallest = min(b - a for a, b in zip(used, used[1:]))
    if rows * cols > RLE_MAX_RATIO * smallest + 128:
        raise DicomReadError(f'{where}: Rows x Columns = {rows} x {cols} cannot come from '
                             f'a {smallest}-byte RLE segment; the header is corrupted')


def _jpeg_header(frame: bytes) -> tuple[int, int, int, int] | None:
    """(height, width, components, precision) of a JPEG / JPEG-LS frame."""
    from pydicom.pixels.utils import _get_jpg_parameters
    info = _get_jpg_parameters(bytes(frame[:65536]))
    if not info or 'components' not in info:
        return None
    return info['height'], info['width'], info['components'], info['precision']


def _j2k_header(frame: bytes) -> tuple[int, int, int, int] | None:
    """(height, width, components, largest precision) from the SIZ marker
    segment of a JPEG 2000 codestream (a JP2 wrapper is searched)."""
    at = bytes(frame[:65536]).find(b'\xff\x4f\xff\x51')
    if at < 0:
        return None
    siz = frame[at + 4:]
    if len(siz) < 38:
        return None
    xsiz, ysiz, xo, yo = struct.unpack('>4I', siz[4:20])
    components = struct.unpack('>H', siz[36:38])[0]
    if components == 0 or len(siz) < 38 + 3 * components or xo > xsiz or yo > ysiz:
        return None
    precision = max((siz[38 + 3 * i] & 0x7F) + 1 for i in range(components))
    return ysiz - yo, xsiz - xo, components, precision
