"""DICOM de-identification of files and folders (``perception deid IN OUT``,
the command in :mod:`perception_medical.commands`).

Applies the DICOM PS3.15 Basic Application Level Confidentiality Profile
with the Retain Longitudinal Temporal Information with Modified Dates Option
(Table E.1-1, edition in :data:`perception_medical.deid.profile.EDITION`) to
every DICOM file under IN and writes the result under OUT with the same
folder structure, every name replaced by a keyed hash unless the caller
keeps them (names often carry patient data). IN is never written. Pixel data and geometry are copied
as they are (no decoding, same transfer syntax); pixels with burned-in text
(BurnedInAnnotation=YES) are flagged in the report, never silently passed as
clean.
"""
from __future__ import annotations

import json
import os
import secrets
import warnings
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from perception.errors import UserError

from .deidentifier import RETAINED_TEXT, Deidentifier
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


def _output_name(deid: Deidentifier, rel: Path, keep_names: bool) -> Path:
    """Where ``rel`` goes under OUT: keyed hashes of every folder and file
    name (written files end in ``.dcm``: an input suffix could carry a name
    too), or ``rel`` itself with ``keep_names``."""
    if keep_names:
        return rel
    return Path(*(deid.hash_name(p) for p in rel.parts[:-1]),
                deid.hash_name(rel.name) + '.dcm')


def deidentify(src: str | os.PathLike, dst: str | os.PathLike, key: bytes | None = None,
               report: str | os.PathLike | None = None, keep_names: bool = False,
               hash_names: bool | None = None, quiet: bool | None = None) -> dict:
    """De-identify every DICOM file under ``src`` into ``dst``.

    Args:
        src: a DICOM file or a folder (searched recursively).
        dst: the output folder (created; must not exist or be empty, and must
            not overlap ``src``). If ``src`` is a file, ``dst`` is the folder
            that receives it.
        key: secret of the keyed hashes (UIDs, pseudonyms, date offsets,
            names); a random one (used for this run only, never stored)
            when None.
        report: where to write the JSON report (default ``dst/deid_report.json``).
        keep_names: keep the input's file and folder names (and name the
            input files in the report); by default every name is replaced
            by a keyed hash, since names often carry patient data. Warns.
        hash_names: deprecated (names are hashed unless ``keep_names``).
        quiet: no progress display (default: ``perception.progress``'s
            setting).

    Returns:
        The report (also written as JSON). It names files by their path in
        ``dst`` (skipped files by the ``id`` their output would have had)
        and lists changed attributes without any value.
    """
    from perception.progress import progress
    src, dst = Path(src).resolve(), Path(dst).resolve()
    report_path = Path(report).resolve() if report else dst / 'deid_report.json'
    _check_paths(src, dst, report_path)
    if keep_names:
        warnings.warn('deidentify(keep_names=True): output file and folder names are the '
                      "input's, and the report names the input files: they may carry "
                      'patient data', UserWarning, stacklevel=2)
    given_key = key is not None
    deid = Deidentifier(key if given_key else secrets.token_bytes(32), load_profile())
    if src.is_file():
        files, root = [src], src.parent
    else:
        files, root = sorted(p for p in src.rglob('*') if p.is_file()), src
    dst.mkdir(parents=True, exist_ok=True)
    entries, written, flagged, failed = [], 0, 0, 0
    with progress(total=len(files), desc='de-identifying', unit='file',
                  quiet=quiet) as bar:
        for path in files:
            entry, ok, burned = _one_file(deid, path, path.relative_to(root), dst,
                                          keep_names)
            entries.append(entry)
            written += ok is True
            failed += ok is None
            flagged += burned
            bar.update()
    result = {
        'tool': 'perception deid',
        'profile': f'DICOM PS3.15 {EDITION} Table E.1-1: Basic Application Level '
                   'Confidentiality Profile, Retain Longitudinal Temporal Information '
                   'with Modified Dates Option',
        'attributes_in_profile': len(deid.profile),
        'unlisted_attributes': 'public names, dates, times and free text the table does '
                               'not list are removed (dummies inside D sequences), except '
                               'RETAINED_TEXT: ' + ', '.join(sorted(RETAINED_TEXT.values())),
        'key': 'from --salt-file (not stored)' if given_key else
               'random for this run (not stored): UIDs differ from any other run',
        'names': 'kept from the input (--keep-names): they may carry patient data'
                 if keep_names else 'hashed with the key (files and folders)',
        'preamble': 'cleared (128 zero bytes)',
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


def _one_file(deid: Deidentifier, path: Path, rel: Path, dst: Path, keep_names: bool
              ) -> tuple[dict, bool | None, bool]:
    """(report entry, True written / False skipped / None failed, burned-in)."""
    out_rel = _output_name(deid, rel, keep_names)
    entry = {'output': out_rel.as_posix()}
    if keep_names:
        entry['input'] = rel.as_posix()
    ds, why = _read(path)
    if ds is None or str(getattr(ds, 'file_meta', {}).get(
            'MediaStorageSOPClassUID', '')) == _DICOMDIR_CLASS:
        # Copying a non-DICOM file could carry patient data across:
        # skipped files are counted, never copied, and named by an id only.
        entry = {'id': entry.pop('output'), **entry}
        entry.update(status='skipped', reason=why or
                     'DICOMDIR (it indexes the input; regenerate one on OUT)')
        return entry, False, False
    target = dst / out_rel
    try:
        changes = deid.apply(ds)
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=False)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the rest
        # never leave a half de-identified file behind
        target.unlink(missing_ok=True)
        entry = {'id': entry.pop('output'), **entry}
        entry.update(status='failed', reason=f'{type(exc).__name__} while de-identifying '
                     '(not written; check the file with pydicom)')
        return entry, None, False
    entry.update(status='written', **changes.as_dict())
    return entry, True, changes.burned_in_annotation
