"""The series index of the CT slice datasets (``DicomSliceDataset``,
``LesionDetectionDataset``): which series lie under a set of folders, their
geometry and the files of their slices.

The index is built once per set of folders from the headers alone (no pixel
is read: every series goes through
:func:`~perception_medical.dicom.series.series_plan`, the header half of
:func:`load_series`, so its geometry is checked with the same policies and
problem codes) and cached as JSON, rebuilt when a file is added, removed or changed. It holds no
PHI, even when folders are named after patients (``DOE_JOHN_19610101/``):
no names, IDs, dates, institutions or paths. Patients are opaque keys
(``patient-0000``...) numbered in series-UID order, series are referred to by
their UID (annotations join on it), SOP instance UIDs by SHA-1 digests, and
files by a keyed digest of their path below the root; the files are found
again by walking the roots, which the cache check does anyway. The key
(``index.key``, random, owner-only) lives beside the index, so that a copied
index alone cannot confirm a guessed name; the cache file's own name is a
keyed digest of the roots.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from typing import Sequence

import numpy as np

from .scan_fields import SCAN_TAGS, scan_fields, thickness_band, unknown_fields

INDEX_VERSION = 3  # 1 stored relative paths (folder names); 2 no scan_fields
KEY_FILE = 'index.key'
_TAGS = ['SeriesInstanceUID', 'SOPInstanceUID', 'PatientID', 'Modality',
         'PhotometricInterpretation', 'WindowCenter', 'WindowWidth'] + SCAN_TAGS
#: MetaImage volumes (LUNA16's release) and their data files
_METAIMAGE = ('.mhd', '.mha', '.raw', '.zraw')


def sop_digest(uid: str) -> str:
    """The index's key for a SOP instance UID (SHA-1, 16 hex digits)."""
    return hashlib.sha1(str(uid).strip().encode()).hexdigest()[:16]


def index_key(folder: str) -> bytes:
    """The secret of the digests in the indexes cached in ``folder``:
    ``folder/index.key``, 32 random bytes made on first use (owner-only).
    Losing it only costs a rebuild."""
    path = os.path.join(folder, KEY_FILE)
    try:
        with open(path, 'rb') as f:
            key = f.read()
        if len(key) >= 16:
            return key
    except FileNotFoundError:
        key = b''
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(os.urandom(32))
    try:
        if key:  # too short to be ours: replace it
            os.replace(tmp, path)
        else:  # atomic and never overwrites: a concurrent worker may win
            os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # file systems without hard links
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    with open(path, 'rb') as f:
        return f.read()


def path_digest(key: bytes, relpath: str) -> str:
    """The index's name for a file: keyed digest of its path below its root
    (``/`` separators, so an index is the same on every OS)."""
    rel = relpath.replace(os.sep, '/')
    return hmac.new(key, rel.encode('utf-8', 'surrogateescape'),
                    'sha256').hexdigest()[:24]


def _walk(roots: Sequence[str], options: dict,
          key: bytes) -> tuple[str, list[dict[str, str]]]:
    """The fingerprint of every file under ``roots`` (path, size, mtime;
    keyed) and, per root, path digest -> absolute path."""
    digest = hmac.new(key, json.dumps(options, sort_keys=True).encode(),
                      'sha256')
    paths: list[dict[str, str]] = []
    for root in roots:
        found = {}
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                st = os.stat(path)
                rel = os.path.relpath(path, root)
                digest.update(f'{rel}\0{st.st_size}\0{st.st_mtime_ns}\n'
                              .encode('utf-8', 'surrogateescape'))
                found[path_digest(key, rel)] = path
        paths.append(found)
    return digest.hexdigest(), paths


def _cache_base() -> str:
    from perception.data.cache import cache_root
    return cache_root()


def default_index_file(roots: Sequence[str], key: bytes | None = None) -> str:
    """Where the index of ``roots`` is cached: ``$PERCEPTION_CACHE`` (or
    ``~/.cache/perception``) ``/dicom_index/<keyed digest of the roots>.json``
    (the key: that folder's :func:`index_key`)."""
    folder = os.path.join(_cache_base(), 'dicom_index')
    key = index_key(folder) if key is None else key
    name = hmac.new(key, '\n'.join(os.path.abspath(r) for r in roots)
                    .encode('utf-8', 'surrogateescape'), 'sha256')
    return os.path.join(folder, f'{name.hexdigest()[:20]}.json')


def _drop_legacy_index(roots: Sequence[str]) -> None:
    """Remove the version-1 cache of ``roots`` (named by an unkeyed digest,
    holding relative paths): it may hold patients' folder names."""
    old = hashlib.sha1('\n'.join(roots).encode()).hexdigest()[:20]
    path = os.path.join(_cache_base(), 'dicom_index', f'{old}.json')
    try:
        os.remove(path)
    except OSError:
        pass


class SeriesIndex(dict):
    """The index as cached (a dict), plus :attr:`paths`, per root the path
    digest -> absolute path found by walking the roots: kept in memory only
    (``json.dump`` of the index writes the dict items, not this)."""

    def __init__(self, data: dict, paths: list[dict[str, str]]):
        super().__init__(data)
        used = [set() for _ in paths]  # keep only the indexed files
        for entry in data.get('series', ()):
            if entry['root'] < len(used):
                used[entry['root']].update(d for d, _ in entry['files'])
        self.paths = [{d: p for d, p in found.items() if d in keep}
                      for found, keep in zip(paths, used)]

    def file(self, entry: dict, j: int) -> tuple[str, int]:
        """(absolute path, frame) of slice ``j`` of series ``entry``."""
        digest, frame = entry['files'][j]
        try:
            return self.paths[entry['root']][digest], frame
        except (KeyError, IndexError):
            raise FileNotFoundError(
                f"series {entry['series_uid']}: the file of slice {j} is no "
                'longer under its folder; the index is rebuilt on the next '
                'run (or delete the index file)') from None


def _header_pass(roots: Sequence[str]) -> tuple[dict, list[str]]:
    """Group files by SeriesInstanceUID (headers only)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from perception.progress import progress
    from perception_medical.dicom.header_scan import list_dicom_files
    series: dict[str, dict] = {}
    skipped = []
    found = [(root, path) for root in roots for path in list_dicom_files(root)]
    with progress(total=len(found), desc='indexing DICOM headers', unit='file') as bar:
        for root, path in found:
            bar.update()
            if path.lower().endswith(_METAIMAGE):
                continue  # indexed by _metaimage_entries
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True,
                                     specific_tags=_TAGS)
            except (InvalidDicomError, OSError, ValueError) as exc:
                skipped.append(f'{path}: {type(exc).__name__}')
                continue
            uid = str(ds.get('SeriesInstanceUID', '') or '')
            if not uid:
                skipped.append(f'{path}: no SeriesInstanceUID')
                continue
            entry = series.setdefault(uid, dict(files=[], sops={}, root=root,
                                                first=ds))
            entry['files'].append(path)
            entry['sops'][path] = str(ds.get('SOPInstanceUID', ''))
    return series, skipped


def build_series_index(roots: Sequence[str], on_problem='error',
                       min_slices: int = 1, key: bytes | None = None) -> dict:
    """Index every series under ``roots`` (see the module docstring); files
    are named by :func:`path_digest` with ``key`` (default: the key of the
    default cache folder)."""
    from perception.progress import summary
    from perception_medical.dicom.series import series_plan
    from perception_medical.dicom.volume import SeriesError
    from perception_medical.windows import header_windows
    started = time.perf_counter()
    name_key = key if key is not None else index_key(
        os.path.join(_cache_base(), 'dicom_index'))
    series, skipped = _header_pass(roots)
    volumes = _metaimage_entries(roots, name_key)
    if not series and not volumes:
        raise FileNotFoundError(
            f"no DICOM series or MetaImage volume under {', '.join(roots)} "
            f'({len(skipped)} other files); point data_root at folders of '
            'DICOM files or .mhd volumes (`perception synth-ct OUT` writes a '
            'study to try)')
    patients: dict[str, str] = {}
    entries = []
    for uid in sorted(series):
        info = series[uid]
        try:
            geom, report = series_plan(info['files'], series_uid=uid,
                                       on_problem=on_problem,
                                       min_slices=min_slices)
        except SeriesError as exc:
            raise SeriesError(
                f'series {uid} under {info["root"]}: {exc} (or set the '
                "dataset's on_problem, e.g. on_problem='keep_largest')",
                exc.code) from exc
        if geom.resampled:
            raise ValueError(
                f'series {uid}: on_problem resampled it ({geom.n_slices}'
                f' slices from {len(geom.slices)} files); slice datasets read '
                "slices lazily and need 'error', 'warn' or 'keep_largest'")
        first = info['first']
        pid = str(first.get('PatientID', '') or f'unknown:{uid}')
        key = patients.setdefault(pid, f'patient-{len(patients):04d}')
        try:
            windows = [[w.center, w.width]
                       for w in header_windows(first)
                       if w.function != 'TABLE']
        except ValueError:
            windows = []  # a broken header window is not worth a failure
        root = info['root']
        files, sops = [], []
        for h in geom.slices:
            path, frame = h.path, (h.frame if h.n_frames > 1 else -1)
            files.append([path_digest(name_key, os.path.relpath(path, root)),
                          frame])
            sops.append(sop_digest(info['sops'].get(path, '')))
        entries.append(dict(
            series_uid=uid, patient=key, root=roots.index(root),
            files=files, sop_digests=sops,
            shape=[geom.n_slices, geom.slices[0].rows, geom.slices[0].cols],
            spacing=[float(v) for v in geom.spacing],
            affine=np.asarray(geom.affine, float).tolist(),
            modality=str(first.get('Modality', '')),
            photometric=str(first.get('PhotometricInterpretation', '')),
            header_windows=windows, problems=report.codes,
            scan_fields=scan_fields(first)))
    for entry in volumes:  # MetaImage: the scan is its own patient
        entry['patient'] = patients.setdefault(
            f"metaimage:{entry['series_uid']}", f'patient-{len(patients):04d}')
    entries += volumes
    # one line, no paths: DICOM folders are often named after patients
    summary(f'series index: {len(entries)} series from '
            f'{sum(len(s["files"]) for s in series.values())} DICOM files and '
            f'{len(volumes)} MetaImage volumes, {len(skipped)} other files skipped, in '
            f'{time.perf_counter() - started:.1f} s')
    return dict(version=INDEX_VERSION, series=entries,
                skipped_files=len(skipped))


def _metaimage_entries(roots: Sequence[str], name_key: bytes) -> list[dict]:
    """Index entries of the MetaImage volumes (``.mhd`` / ``.mha``) under
    ``roots``: series UID = file stem (LUNA16's layout), one file per
    volume, its slices addressed by frame = slice index (headers only)."""
    from perception_medical.dicom.header_scan import list_dicom_files
    from perception_medical.dicom.metaimage import is_metaimage, read_header
    from perception_medical.dicom.volume import SeriesError
    out, seen = [], {}
    for r, root in enumerate(roots):
        for path in list_dicom_files(root):
            if not is_metaimage(path):
                continue
            header = read_header(path)
            uid = os.path.splitext(os.path.basename(path))[0]
            if uid in seen:
                raise SeriesError(f'MetaImage volumes {seen[uid]} and {path} '
                                  f'have the same name ({uid}), which is the '
                                  'series UID; rename one', 'duplicate_series')
            seen[uid] = path
            digest = path_digest(name_key, os.path.relpath(path, root))
            n, rows, cols = header['shape']
            out.append(dict(
                series_uid=uid, patient='', root=r,
                files=[[digest, k] for k in range(n)],
                sop_digests=[sop_digest(f'{uid}/{k}') for k in range(n)],
                shape=[n, rows, cols], spacing=list(header['spacing']),
                affine=header['affine'].tolist(), modality='CT',
                photometric='MONOCHROME2', header_windows=[], problems=[],
                scan_fields=unknown_fields(slice_thickness_band=thickness_band(
                    header['spacing'][0]))))
    return out


def load_series_index(roots: Sequence[str], index_file: str | None = None,
                      on_problem='error',
                      rebuild: bool = False) -> SeriesIndex:
    """The cached index of ``roots``, rebuilt when any file was added,
    removed or changed (size / mtime), or the options differ."""
    roots = [os.path.abspath(r) for r in roots]
    for root in roots:
        if not os.path.isdir(root):
            raise FileNotFoundError(
                f"DICOM folder '{root}' does not exist; set data_root (and "
                'series_dirs) in the config or with --cfg-options')
    if index_file:
        key = index_key(os.path.dirname(os.path.abspath(index_file)))
    else:
        key = index_key(os.path.join(_cache_base(), 'dicom_index'))
        index_file = default_index_file(roots, key)
        _drop_legacy_index(roots)
    options = dict(on_problem=on_problem, version=INDEX_VERSION)
    fingerprint, paths = _walk(roots, options, key)
    if not rebuild and os.path.isfile(index_file):
        try:
            with open(index_file) as f:
                cached = json.load(f)
            if cached.get('fingerprint') == fingerprint:
                return SeriesIndex(cached, paths)
        except (OSError, ValueError):
            pass  # unreadable cache: rebuild it
    index = build_series_index(roots, on_problem, key=key)
    index['fingerprint'] = fingerprint
    os.makedirs(os.path.dirname(os.path.abspath(index_file)), exist_ok=True)
    tmp = f'{index_file}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        json.dump(index, f)
    os.replace(tmp, index_file)  # atomic: workers may race on a cold cache
    return SeriesIndex(index, paths)
