"""DICOM series as a frame source: ``open_source('path/to/series')``.

Registered in SOURCES with priority 300 (above cameras/images). Accepts a
folder holding DICOM files, a DICOMDIR, a single DICOM file, or (when the
opener is called directly) a list of files. Yields one :class:`Frame` per
slice: float32 (H, W) in modality units, ``meta`` with ``series_uid``,
``slice_index``, ``affine`` (index (z, y, x, 1) -> LPS mm of the source
volume), ``clock='index'``, ``path`` and ``spacing``.
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence, Union

import numpy as np

from perception.registry import SOURCES
from perception.sources import Frame, FrameSource, SourceOpener

from .reading import DicomReadError, read_dicom, read_slice
from .series import load_series, series_plan
from .series_build import SeriesGeometry
from .volume import SeriesError, SeriesReport, Volume, resolve_policies

DICOM_SUFFIXES = ('.dcm', '.dicom', '.dic', '.ima')


def looks_like_dicom(path: str) -> bool:
    """'DICM' at byte 128, a DICOM suffix, or a DICOMDIR name."""
    name = os.path.basename(path).upper()
    if name.startswith('DICOMDIR') or name.lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        with open(path, 'rb') as f:
            f.seek(128)
            return f.read(4) == b'DICM'
    except OSError:
        return False


def _folder_has_dicom(folder: str, limit: int = 64) -> bool:
    seen = 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if looks_like_dicom(os.path.join(root, name)):
                return True
            seen += 1
            if seen >= limit:
                return False
    return False


class DicomSeriesSource(FrameSource):
    """Slices of one series, in order along the slice normal.

    The series is planned from its headers (:func:`series_plan`) and each
    slice read when its frame is asked for, by
    :func:`~perception_medical.dicom.reading.read_slice` (the reader of the
    CT datasets too); a series that ``on_problem`` resamples is loaded whole
    (:attr:`volume`). A slice whose pixels cannot be decoded is dropped (a
    ``dropped`` event) unless the ``unreadable`` policy is ``error``;
    ``isolate=True`` decodes in worker processes (untrusted archives: a
    file whose decoder aborts or hangs is such a slice).
    """

    def __init__(self, uri: Union[str, Sequence[str]],
                 series_uid: str | None = None, on_problem='error',
                 fps: float = 1.0, timeout_s: float | None = None,
                 isolate: bool = False) -> None:
        name = uri if isinstance(uri, str) else f'{len(uri)} DICOM files'
        super().__init__(name, timeout_s)
        self.fps, self.isolate = fps, isolate
        self.unreadable = resolve_policies(on_problem)['unreadable']
        self.plan: SeriesGeometry | None = None
        self.volume: Volume | None = None
        loaded = self._load(uri, series_uid, on_problem, isolate)
        if isinstance(loaded, Volume):
            self.volume, report = loaded, loaded.report
        else:
            self.plan, report = loaded
        self.report = report
        for path, why in report.skipped:
            self.emit('corrupt', f'{path}: {why}')
        for where, why in report.dropped:
            self.emit('dropped', f'{where}: {why}')

    @staticmethod
    def _load(uri, series_uid, on_problem, isolate=False
              ) -> Volume | tuple[SeriesGeometry, SeriesReport]:
        single = isinstance(uri, str) and os.path.isfile(uri) and \
            not os.path.basename(uri).upper().startswith('DICOMDIR')
        if not single:
            plan = series_plan(uri, series_uid, on_problem)
            if plan[0].resampled:   # resampling needs the whole volume
                return load_series(uri, series_uid, on_problem, isolate=isolate)
            return plan
        try:
            return load_series([uri], series_uid, on_problem, min_slices=1,
                               isolate=isolate)
        except SeriesError as exc:
            if exc.code != 'missing_attribute':
                raise
        # a projection image (CR, DX, SC) has no patient geometry: frames
        # still come out, with a pixel-grid affine that says so in meta
        try:
            array = read_dicom(uri, isolate=isolate)
        except DicomReadError as exc:
            raise SeriesError(str(exc), 'unreadable') from exc
        if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3
                               and array.shape[0] != 3):
            array = array[None]
        volume = Volume(array, np.eye(4), (1.0, 1.0, 1.0),
                        {'series_uid': None, 'geometry': 'none (pixel grid)'},
                        SeriesReport(), [uri] * len(array))
        volume.report.notes.append(f'{uri}: no patient geometry; the affine '
                                   'is the pixel grid')
        return volume

    def _iter_frames(self) -> Iterator[Frame]:
        if self.plan is not None:
            yield from self._read_frames(self.plan)
            return
        vol = self.volume
        uid = vol.meta.get('series_uid')
        for z in range(len(vol.array)):
            meta = {'series_uid': uid, 'slice_index': z,
                    'affine': vol.affine, 'clock': 'index',
                    'path': vol.files[z] if z < len(vol.files) else None,
                    'spacing': vol.spacing,
                    'modality': vol.meta.get('modality')}
            yield Frame(vol.array[z], int(round(z * 1e9 / self.fps)), z,
                        uid or 'dicom', meta)
        self.emit('eos', f'{len(vol.array)} slices')

    def _read_frames(self, plan: SeriesGeometry) -> Iterator[Frame]:
        first = plan.slices[0]
        uid, read = first.series_uid, 0
        for z, h in enumerate(plan.slices):
            try:
                pixels = read_slice(h.path, h.frame if h.n_frames > 1 else -1,
                                    isolate=self.isolate)
            except DicomReadError as exc:
                if self.unreadable == 'error':
                    raise SeriesError(f'{exc} (or open the source with '
                                      "on_problem={'unreadable': 'warn'})",
                                      'unreadable') from exc
                self.emit('dropped', f'{h.where}: pixels unreadable ({exc})')
                continue
            meta = {'series_uid': uid, 'slice_index': z,
                    'affine': plan.affine, 'clock': 'index',
                    'path': h.where, 'spacing': plan.spacing,
                    'modality': first.modality}
            read += 1
            yield Frame(pixels, int(round(z * 1e9 / self.fps)), z,
                        uid or 'dicom', meta)
        self.emit('eos', f'{read} slices')


@SOURCES.register_module()
class DicomOpener(SourceOpener):
    """Opens a DICOM series folder, DICOMDIR, file or list of files."""

    priority = 300

    def can_open(self, uri) -> bool:
        if not isinstance(uri, (str, os.PathLike)):
            return all(os.path.isfile(p) for p in uri) and bool(uri)
        uri = os.fspath(uri)
        if '://' in uri:
            return False
        if os.path.isdir(uri):
            return _folder_has_dicom(uri)
        return os.path.isfile(uri) and looks_like_dicom(uri)

    def open(self, uri, series_uid: str | None = None, on_problem='error',
             fps: float = 1.0, timeout_s: float | None = None,
             isolate: bool = False) -> DicomSeriesSource:
        return DicomSeriesSource(uri, series_uid, on_problem, fps, timeout_s,
                                 isolate)
