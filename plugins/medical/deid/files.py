"""DICOM de-identification of files and folders (``perception deid IN OUT``,
the command in :mod:`perception_medical.commands`).

Applies the DICOM PS3.15 Basic Application Level Confidentiality Profile
with the Retain Longitudinal Temporal Information with Modified Dates Option
(Table E.1-1, edition in :data:`perception_medical.deid.profile.EDITION`) to
every DICOM file under IN and writes the result under OUT with the same
folder structure. IN is never written. Pixel data and geometry are copied
as they are (no decoding, same transfer syntax); pixels with burned-in text
(BurnedInAnnotation=YES) are flagged in the report, never silently passed as
clean.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from perception.errors import UserError

from .deidentifier import Deidentifier
from .profile import EDITION, load_profile

__all__ = ['Deidentifier', 'deidentify', 'read_key', 'DeidError']

_DICOMDIR_CLASS = '1.2.840.10008.1.3.10'
_MIN_KEY_BYTES = 16


class DeidError(UserError, ValueError):
    """Bad arguments for de-identification (paths, key file)."""


def read_key(path: str | os.PathLike) -> bytes:
    """Read the secret key of the keyed hashes from a salt file.

    The whole file content is the key, so keep it as safe as the data.
    """
    path = Path(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise DeidError(f'--salt-file {path}: cannot read it ({exc.strerror}); '
                        'make one with: head -c 32 /dev/urandom > salt.bin') from None
    if len(key) < _MIN_KEY_BYTES:
        raise DeidError(f'--salt-file {path}: {len(key)} bytes, at least {_MIN_KEY_BYTES} '
                        'needed; make one with: head -c 32 /dev/urandom > salt.bin')
    return key


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_paths(src: Path, dst: Path, report: Path | None) -> None:
    if not src.exists():
        raise DeidError(f'IN {src} does not exist; give a DICOM file or a folder of them')
    if _inside(dst, src):
        raise DeidError(f'OUT {dst} is IN or inside IN {src}: de-identification never '
                        'writes into its input; choose an OUT outside IN')
    if _inside(src, dst):
        raise DeidError(f'IN {src} is inside OUT {dst}: output files could replace input '
                        'files; choose an OUT that does not contain IN')
    if dst.is_file() or (dst.is_dir() and any(dst.iterdir())):
        raise DeidError(f'OUT {dst} already exists and is not an empty folder; choose a '
                        'new folder (nothing is overwritten)')
    if report is not None and _inside(report, src):
        raise DeidError(f'--report {report} is inside IN {src}; write it elsewhere')


def _read(path: Path):
    """The dataset of ``path``, or None with the reason when it is not DICOM."""
    try:
        return pydicom.dcmread(path), None
    except InvalidDicomError:
        pass  # no preamble: maybe an old file; accept it only if it looks like one
    except Exception as exc:  # noqa: BLE001 - report and go on, never a traceback
        return None, f'unreadable DICOM ({type(exc).__name__})'
    try:
        ds = pydicom.dcmread(path, force=True)
        if 'SOPClassUID' in ds or 'SOPInstanceUID' in ds:
            return ds, None
    except Exception:  # noqa: BLE001
        pass
    return None, 'not a DICOM file'


def deidentify(src: str | os.PathLike, dst: str | os.PathLike, key: bytes | None = None,
               report: str | os.PathLike | None = None, hash_names: bool = False) -> dict:
    """De-identify every DICOM file under ``src`` into ``dst``.

    Args:
        src: a DICOM file or a folder (searched recursively).
        dst: the output folder (created; must not exist or be empty, and must
            not overlap ``src``). If ``src`` is a file, ``dst`` is the folder
            that receives it.
        key: secret of the keyed hashes (UIDs, pseudonyms, date offsets);
            a random one (used for this run only, never stored) when None.
        report: where to write the JSON report (default ``dst/deid_report.json``).
        hash_names: replace every file and folder name with a keyed hash, for
            input trees whose names carry patient data.

    Returns:
        The report (also written as JSON). It names files by their relative
        path in ``dst`` and lists changed attributes without any value.
    """
    src, dst = Path(src).resolve(), Path(dst).resolve()
    report_path = Path(report).resolve() if report else dst / 'deid_report.json'
    _check_paths(src, dst, report_path)
    given_key = key is not None
    deid = Deidentifier(key if given_key else secrets.token_bytes(32), load_profile())
    if src.is_file():
        files, root = [src], src.parent
    else:
        files, root = sorted(p for p in src.rglob('*') if p.is_file()), src
    dst.mkdir(parents=True, exist_ok=True)
    entries, written, flagged, failed = [], 0, 0, 0
    for path in files:
        rel = path.relative_to(root)
        out_rel = Path(*(deid.hash_name(p) for p in rel.parts)) if hash_names else rel
        entry = {'output': out_rel.as_posix()}
        if not hash_names:
            entry['input'] = rel.as_posix()
        ds, why = _read(path)
        if ds is None or str(getattr(ds, 'file_meta', {}).get(
                'MediaStorageSOPClassUID', '')) == _DICOMDIR_CLASS:
            # Copying a non-DICOM file could carry patient data across:
            # skipped files are named, never copied.
            entry.update(status='skipped', reason=why or
                         'DICOMDIR (it indexes the input; regenerate one on OUT)')
            entry.pop('output')
            entries.append(entry)
            continue
        target = dst / out_rel
        try:
            changes = deid.apply(ds)
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target, enforce_file_format=False)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the rest
            # never leave a half de-identified file behind
            target.unlink(missing_ok=True)
            entry.pop('output')
            entry.update(status='failed', reason=f'{type(exc).__name__} while de-identifying '
                         '(not written; check the file with pydicom)')
            entries.append(entry)
            failed += 1
            continue
        written += 1
        flagged += changes.burned_in_annotation
        entry.update(status='written', **changes.as_dict())
        entries.append(entry)
    result = {
        'tool': 'perception deid',
        'profile': f'DICOM PS3.15 {EDITION} Table E.1-1: Basic Application Level '
                   'Confidentiality Profile, Retain Longitudinal Temporal Information '
                   'with Modified Dates Option',
        'attributes_in_profile': len(deid.profile),
        'key': 'from --salt-file (not stored)' if given_key else
               'random for this run (not stored): UIDs differ from any other run',
        'dates': 'shifted by a whole number of days per patient; times of day kept',
        'private_attributes': 'removed',
        'patient_id': 'replaced by a keyed pseudonym (ANON-...): the same key keeps '
                      "a patient's files linked across runs",
        'summary': {'files': len(files), 'written': written, 'failed': failed,
                    'skipped': len(files) - written - failed,
                    'burned_in_annotation': flagged},
        'files': entries,
    }
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(result, indent=1) + '\n', encoding='utf-8')
    return result
