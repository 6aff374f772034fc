"""Decoding pixel data without letting a native decoder take the process down.

:func:`decode_pixels` checks the transfer syntax and the header
(:mod:`~perception_medical.dicom.pixel_checks`), then tries the installed
decoders of pydicom's pixel backend one at a time, the more robust first
(:data:`PREFERRED_PLUGINS`: pydicom's own RLE decoder in Python before the
Rust one, Pillow's libjpeg-turbo before gdcm, OpenJPEG before gdcm), and
catches what each raises, a Rust panic included
(``pyo3_runtime.PanicException`` derives from ``BaseException``, not
``Exception``). What no check can foresee (a C++ exception inside gdcm on
crafted data ends the process with ``abort``) is contained by running gdcm
in a worker process (:data:`ABORTING_PLUGINS`); ``read_dicom(path,
isolate=True)`` puts every step of a file there
(:mod:`~perception_medical.dicom.isolation`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .pixel_checks import check_pixel_header
from .problems import DicomReadError, fail

__all__ = ['decode_pixels', 'transfer_syntax', 'PREFERRED_PLUGINS',
           'ABORTING_PLUGINS', 'DECODER_PACKAGES', 'GPL_HINT']

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
_JPEG = ('pillow', 'pylibjpeg', 'gdcm')
_JPEG_LOSSLESS = ('pylibjpeg', 'pyjpegls', 'gdcm')
_J2K = ('pylibjpeg', 'pillow', 'gdcm')
# Decoder order per transfer syntax: memory-safe or well-fuzzed first, gdcm
# (whose C++ asserts abort the process) last. Installed plugins not named
# here are tried after these.
PREFERRED_PLUGINS: dict[str, tuple[str, ...]] = {
    '1.2.840.10008.1.2.5': ('pydicom', 'pylibjpeg', 'gdcm'),
    '1.2.840.10008.1.2.4.50': _JPEG, '1.2.840.10008.1.2.4.51': _JPEG,
    '1.2.840.10008.1.2.4.57': _JPEG_LOSSLESS, '1.2.840.10008.1.2.4.70': _JPEG_LOSSLESS,
    '1.2.840.10008.1.2.4.80': _JPEG_LOSSLESS, '1.2.840.10008.1.2.4.81': _JPEG_LOSSLESS,
    '1.2.840.10008.1.2.4.90': _J2K, '1.2.840.10008.1.2.4.91': _J2K,
    '1.2.840.10008.1.2.4.201': _J2K, '1.2.840.10008.1.2.4.202': _J2K,
    '1.2.840.10008.1.2.4.203': _J2K,
}
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)
# Plugins whose native code can end the whole process on crafted data (a
# C++ exception in gdcm's JPEG codecs ends in std::terminate, exit 134):
# they decode in a worker process (shared, reused), unless this
# process already is one. The JPEG lossless and JPEG-LS syntaxes have no
# other installed decoder.
ABORTING_PLUGINS = ('gdcm', )


def transfer_syntax(path: str, ds, notes: Sequence[str] = ()):
    """The file's Transfer Syntax UID as a pydicom ``UID`` that names a
    transfer syntax pydicom knows.

    Raises:
        DicomReadError: missing, corrupted or unknown (never anything else).
    """
    from pydicom.uid import UID
    try:
        raw = ds.file_meta.get('TransferSyntaxUID')
        uid = UID(str(raw if raw is not None else '').strip('\0 '))
        known = bool(uid) and not uid.is_private and uid.is_transfer_syntax
    except Exception:  # noqa: BLE001 - whatever is stored there, say so
        known, uid = False, None
    if not known:
        shown = repr(str(raw))[:80] if uid is not None or raw is not None else 'nothing'
        raise fail(path, f'TransferSyntaxUID (0002,0010) is {shown}, not a transfer '
                   'syntax: the file meta is corrupted; rewrite it with a known syntax '
                   "(e.g. dcmtk's dcmconv or gdcmconv)", notes)
    return uid


def _plugins(tsuid) -> tuple[str, ...]:
    """Installed decoding plugins for ``tsuid`` in the order to try them;
    empty for native syntaxes (one decoder, numpy)."""
    from pydicom.pixels.decoders.base import get_decoder
    if not tsuid.is_encapsulated:
        return ()
    try:
        available = tuple(get_decoder(tsuid).available_plugins)
    except Exception:  # noqa: BLE001 - no decoder class for this syntax
        return ()
    preferred = PREFERRED_PLUGINS.get(str(tsuid), ())
    return tuple(p for p in preferred if p in available) + tuple(
        p for p in available if p not in preferred)


def _summary(exc: BaseException, path: str) -> str:
    text = str(exc).replace('\n', ' ')
    if text.startswith(f'{path}: '):  # from a worker process: the path once
        text = text[len(path) + 2:]
    text = text[:300]
    kind = type(exc).__name__
    if kind == 'PanicException':
        return f'the decoder panicked (Rust panic: {text})'
    return f'{kind}: {text}' if text else kind


def decode_pixels(path: str, ds, keyword: str, notes: list[str]) -> np.ndarray:
    """Stored pixel values of ``ds`` (pydicom's array, YBR converted).

    Raises:
        DicomReadError: inconsistent header, unknown transfer syntax, no
            decoder installed, or every decoder failed (each one named).
    """
    tsuid = transfer_syntax(path, ds, notes)
    check_pixel_header(path, ds, str(tsuid), keyword, tsuid.is_encapsulated)
    plugins = _plugins(tsuid)
    if tsuid.is_encapsulated and not plugins:
        raise _no_decoder(path, ds, tsuid, notes)
    failures: list[str] = []
    from .isolation import call_isolated, in_worker
    for plugin in plugins or ('', ):
        try:
            if plugin in ABORTING_PLUGINS and not in_worker():
                # by name: reading.stored_pixels, run in the worker
                return call_isolated(path, 'perception_medical.dicom.reading',
                                     'stored_pixels', path, plugin)
            ds.pixel_array_options(decoding_plugin=plugin)
            return ds.pixel_array
        except _FATAL:
            raise
        except MemoryError as exc:
            raise fail(path, 'the decoded pixels do not fit in memory (Rows x Columns x '
                       'NumberOfFrames is too large for this machine)', notes) from exc
        except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException
            failures.append((plugin or 'numpy', exc))
    text = '; '.join(f'{name}: {_summary(exc, path)}' for name, exc in failures)
    first = failures[0][1]
    if any(w in text.lower() for w in ('less than expected', 'truncated')):
        raise fail(path, f'pixel data is truncated ({text})', notes) from first
    if not tsuid.is_encapsulated:
        raise fail(path, f'pixel data could not be read ({text})', notes) from first
    if str(tsuid) == '1.2.840.10008.1.2.4.51' and _bits_stored(ds) > 8:
        raise fail(path, f"cannot decode 12-bit transfer syntax 'JPEG Extended (12-bit)' "
                   f'({tsuid}): only the GPL decoder pylibjpeg-libjpeg reads it; install '
                   f'it with {GPL_HINT} ({text})', notes) from first
    name = DECODER_PACKAGES.get(str(tsuid), (tsuid.name, None))[0]
    raise fail(path, f"pixel data could not be decoded (transfer syntax '{name}' "
               f'({tsuid}); decoders tried: {", ".join(n for n, _ in failures)}): '
               f'{text}', notes) from first


def _bits_stored(ds) -> int:
    try:
        return int(ds.get('BitsStored', 8) or 8)
    except Exception:  # noqa: BLE001
        return 8


def _no_decoder(path: str, ds, tsuid, notes: Sequence[str]) -> DicomReadError:
    name, package = DECODER_PACKAGES.get(str(tsuid), (tsuid.name, None))
    ts = f"transfer syntax '{name}' ({tsuid})"
    if str(tsuid) == '1.2.840.10008.1.2.4.51' and _bits_stored(ds) > 8:
        return fail(path, f'cannot decode 12-bit {ts}: only the GPL decoder '
                    f'pylibjpeg-libjpeg reads it; install it with {GPL_HINT}', notes)
    how = (f'install {package}' if package else
           'no Python decoder exists for it; convert the file with '
           "dcmtk's dcmdjpeg/dcmconv or gdcmconv --raw")
    return fail(path, f'no decoder installed for {ts}: {how}', notes)
