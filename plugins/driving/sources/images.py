"""Image folders and globs, with timestamps from a sidecar CSV.

Overrides the core's image opener (priority 200 > 0; DICOM's 300 still
wins). Files are read in name order; 8-bit images come as RGB uint8, 16-bit
ones are scaled to uint8 (``>> 8``) unless ``raw=True``. Timestamps come
from a sidecar CSV (``filename,timestamp_ns`` or ``filename,timestamp_s``;
see docs/rig.md) when one exists, else from ``index / fps``.
"""
from __future__ import annotations

import csv
import glob
import os
from typing import Iterator

import numpy as np

from perception.registry import SOURCES
from perception.sources import (
    IMAGE_SUFFIXES,
    Frame,
    FrameSource,
    SourceError,
    SourceOpener,
    camera_name,
    list_images,
)

SIDECAR_NAME = 'timestamps.csv'


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """OpenCV-ordered image of any depth -> RGB uint8 (H, W, 3)."""
    import cv2
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frame_image(path: str, raw: bool = False) -> np.ndarray | None:
    """RGB uint8, or with ``raw`` the native depth (channels in RGB(A)
    order); None when the file cannot be decoded."""
    import cv2
    data = np.fromfile(path, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        return None
    if not raw:
        return to_rgb8(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return image[..., ::-1].copy()
    if image.ndim == 3 and image.shape[2] == 4:
        return image[..., [2, 1, 0, 3]].copy()
    return image


def find_sidecar(uri: str, paths: list[str]) -> str | None:
    """``timestamps.csv`` in the folder of the images, if any (none when a
    glob spans several folders: pass ``sidecar=`` then)."""
    if os.path.isdir(uri):
        folder = uri
    else:
        folders = {os.path.dirname(p) for p in paths}
        if len(folders) != 1:
            return None
        folder = folders.pop() or '.'
    candidate = os.path.join(folder, SIDECAR_NAME)
    return candidate if os.path.isfile(candidate) else None


def read_sidecar(csv_path: str) -> dict[str, tuple[int, int]]:
    """Normalised image path -> (timestamp_ns, CSV line number)."""
    folder = os.path.dirname(csv_path)
    rows: dict[str, tuple[int, int]] = {}
    with open(csv_path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if 'filename' not in fields or not ({'timestamp_ns', 'timestamp_s'}
                                            & set(fields)):
            raise SourceError(
                f'{csv_path}: line 1: the header must have the columns '
                f"'filename' and 'timestamp_ns' (or 'timestamp_s'); found "
                f'{fields}. See docs/rig.md (sidecar CSV).')
        column = 'timestamp_ns' if 'timestamp_ns' in fields else 'timestamp_s'
        for line, row in enumerate(reader, start=2):
            name, value = (row.get('filename') or '').strip(), row.get(column)
            try:
                t_ns = (int(value) if column == 'timestamp_ns' else
                        int(round(float(value) * 1e9)))
            except (TypeError, ValueError):
                raise SourceError(
                    f'{csv_path}: line {line}: {column} {value!r} of '
                    f"'{name}' is not a number; write integer nanoseconds "
                    '(timestamp_ns) or float seconds (timestamp_s)') from None
            key = os.path.normpath(os.path.join(folder, name))
            if key in rows:
                raise SourceError(
                    f"{csv_path}: line {line}: '{name}' is listed twice "
                    f'(first on line {rows[key][1]}); keep one row per image')
            rows[key] = (t_ns, line)
    return rows


class ImageFolderSource(FrameSource):
    """Frames from image files in name order.

    Args:
        uri: an image file, a folder (not recursive) or a glob.
        fps: frame rate for index timestamps when there is no sidecar.
        raw: native depth and channels instead of RGB uint8.
        camera: ``Frame.camera`` (default: the images' folder name,
            :func:`perception.sources.camera_name`).
        sidecar: CSV of timestamps (default: ``timestamps.csv`` beside the
            images, when present); ``False`` ignores any sidecar.
        stride: every ``stride``-th image.
        timeout_s: accepted for API symmetry; files never wait.
    """

    def __init__(self, uri: str, fps: float = 10.0, raw: bool = False,
                 camera: str | None = None, sidecar: str | bool | None = None,
                 stride: int = 1, timeout_s: float | None = None) -> None:
        super().__init__(uri, timeout_s)
        if int(stride) < 1 or fps <= 0:
            raise ValueError(f'{uri}: stride must be >= 1 and fps > 0 (got '
                             f'stride={stride}, fps={fps})')
        self.paths = list_images(uri)
        if not self.paths:
            exists = os.path.exists(uri) or bool(glob.glob(uri))
            where = 'the path exists' if exists else 'the path does not exist'
            raise SourceError(f'{uri}: no image files found ({where}; '
                              f'suffixes {", ".join(IMAGE_SUFFIXES)})')
        self.fps, self.raw = fps, raw
        self.camera = camera or camera_name(uri, self.paths)
        self.stride = int(stride)
        if sidecar is None:
            sidecar = find_sidecar(uri, self.paths)
        self.sidecar = sidecar or None
        self.times = self._sidecar_times() if self.sidecar else None

    def _sidecar_times(self) -> list[int]:
        if not os.path.isfile(self.sidecar):
            raise SourceError(f'{self.uri}: sidecar {self.sidecar} does not '
                              'exist')
        rows = read_sidecar(self.sidecar)
        times, previous = [], None
        for path in self.paths:
            key = os.path.normpath(path)
            if key not in rows:
                raise SourceError(
                    f"{self.sidecar}: no row for image '{path}'; add a line "
                    f'`{os.path.relpath(path, os.path.dirname(self.sidecar))}'
                    ',<timestamp_ns>` or pass sidecar=False to use index / '
                    'fps timestamps')
            t_ns, line = rows[key]
            if previous is not None and t_ns <= previous[0]:
                raise SourceError(
                    f'{self.sidecar}: line {line}: timestamp {t_ns} of '
                    f"'{os.path.basename(path)}' is not after {previous[0]} "
                    f'(line {previous[1]}); timestamps must increase in file-'
                    'name order (name files with zero-padded numbers)')
            previous = (t_ns, line)
            times.append(t_ns)
        listed = set(map(os.path.normpath, self.paths))
        missing = [k for k in rows
                   if k not in listed and not os.path.exists(k)]
        if missing:
            self.stats['missing'] = len(missing)
            self.emit('dropped', f'{self.sidecar}: {len(missing)} listed '
                      f'images do not exist (first: {missing[0]})',
                      len(missing))
        return times

    def _iter_frames(self) -> Iterator[Frame]:
        for index in range(0, len(self.paths), self.stride):
            path = self.paths[index]
            image = read_frame_image(path, self.raw)
            if image is None:
                self.emit('corrupt', f'{path}: not a readable image; skipped')
                continue
            if self.times is not None:
                t_ns, clock = self.times[index], 'sidecar'
            else:
                t_ns, clock = int(round(index * 1e9 / self.fps)), 'index'
            yield Frame(image, t_ns, index, self.camera,
                        {'clock': clock, 'path': path})
        self.emit('eos', f'{self.uri}: {len(self.paths)} files')


@SOURCES.register_module()
class ImageFolderOpener(SourceOpener):
    """Image files, folders and globs, with sidecar CSV timestamps."""

    priority = 200

    def can_open(self, uri: str) -> bool:
        if '://' in uri:
            return False
        if uri.lower().endswith(IMAGE_SUFFIXES):
            return True  # a missing image is reported by open(), by name
        return bool(list_images(uri))

    def open(self, uri: str, **options) -> FrameSource:
        return ImageFolderSource(uri, **options)
