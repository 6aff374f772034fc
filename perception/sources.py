"""Frame sources: one API for video files, image folders, live streams, ROS
bags, camera rigs and DICOM series.

``open_source(uri, **options)`` asks every opener registered in
:data:`perception.registry.SOURCES` whether it accepts ``uri`` and opens it
with the highest-priority one. Plugins register the real openers (DICOM in
the medical plugin, cameras/video/streams/bags/rigs in the driving plugin);
the core registers :class:`ImageFileOpener` for image files, folders and
globs at the lowest priority.
"""
from __future__ import annotations

import abc
import csv
import glob
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import numpy as np

from perception.errors import UserError
from perception.redact import redact_text, redact_url
from perception.registry import SOURCES

EventKind = Literal['stall', 'reconnect', 'dropped', 'corrupt', 'partial',
                    'eos']
ClockKind = Literal['pts', 'header', 'sidecar', 'index', 'arrival']


@dataclass
class Frame:
    """One image from a source.

    Attributes:
        image: camera sources: RGB uint8 (H, W, 3) (native depth on request);
            DICOM sources: float32 (H, W) slice in modality units.
        timestamp_ns: stream time in nanoseconds; ``meta['clock']`` says
            which clock (``pts``, ``header``, ``sidecar``, ``index``,
            ``arrival``).
        index: position of the frame in its source (0-based, before stride).
        camera: camera (or series) name.
        meta: everything else (``clock``, ``path``, ``intrinsics``,
            ``series_uid``, ``slice_index``, ``affine``...).
    """

    image: np.ndarray
    timestamp_ns: int
    index: int
    camera: str = 'cam0'
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class FrameSet:
    """Frames of several cameras taken at (about) the same time."""

    timestamp_ns: int
    frames: dict[str, Frame]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceEvent:
    """Something a consumer should know about: a stall, a reconnect, dropped
    or corrupt frames, a partial frame set, the end of the stream.

    ``span_ns`` is the (first, last) source time of the frames an event is
    about, where known (e.g. the presentation times a ``dropped`` event's
    lost frames would have had)."""

    kind: EventKind
    time: float
    detail: str = ''
    count: int = 1
    span_ns: tuple[int, int] | None = None


class SourceTimeout(UserError, TimeoutError):
    """No frame arrived within ``timeout_s``; the message names the source."""


class SourceError(UserError, ValueError):
    """A source cannot be opened or read; the message names it and why."""


class FrameSource(abc.ABC):
    """Iterable of :class:`Frame` (or :class:`FrameSet` for rigs).

    Subclasses implement :meth:`_iter_frames` and, if they hold resources,
    :meth:`_close`. ``events`` collects :class:`SourceEvent` s and ``stats``
    counts what happened (``frames``, ``dropped``, ``corrupt``...).
    ``uri`` is the source as shown (credentials redacted,
    :func:`perception.redact.redact_url`): use it in every message;
    ``connect_uri`` is the one to connect to, never to print.
    """

    def __init__(self, uri: str, timeout_s: float | None = None) -> None:
        self.connect_uri = str(uri)
        self.uri = redact_url(self.connect_uri)
        self.timeout_s = timeout_s
        self.events: list[SourceEvent] = []
        self.stats: dict[str, int | float] = {'frames': 0}
        self.closed = False

    # -- to implement --------------------------------------------------
    @abc.abstractmethod
    def _iter_frames(self) -> Iterator[Frame | FrameSet]:
        """Yield frames in stream order."""

    def _close(self) -> None:
        """Release files, sockets and worker threads."""

    # -- shared behaviour ----------------------------------------------
    def __iter__(self) -> Iterator[Frame | FrameSet]:
        if self.closed:
            raise SourceError(f'{self.uri}: the source is closed')
        try:
            for item in self._iter_frames():
                self.stats['frames'] = int(self.stats.get('frames', 0)) + 1
                yield item
        except (SourceError, SourceTimeout) as exc:
            shown = redact_text(str(exc))
            if shown != str(exc):  # a library quoted the URL with credentials
                raise type(exc)(shown) from None
            raise

    def emit(self, kind: EventKind, detail: str = '', count: int = 1,
             span_ns: tuple[int, int] | None = None) -> None:
        """Record an event and count it in ``stats`` (URLs in ``detail``
        redacted)."""
        self.events.append(SourceEvent(kind, time.time(), redact_text(detail),
                                       count, span_ns))
        self.stats[kind] = int(self.stats.get(kind, 0)) + count

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def __enter__(self) -> 'FrameSource':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.uri!r})'


class SourceOpener(abc.ABC):
    """Decides whether it can open a URI and opens it. Register subclasses
    in ``SOURCES``; the highest ``priority`` among those that accept a URI
    wins (DICOM 300 > driving cameras/images 200 > core images 0)."""

    priority: int = 0

    @abc.abstractmethod
    def can_open(self, uri: str) -> bool:
        """Cheap check (suffix, scheme, a peek at a header)."""

    @abc.abstractmethod
    def open(self, uri: str, **options) -> FrameSource:
        """Open ``uri``; unknown options raise ``TypeError``."""


def registered_openers() -> list[SourceOpener]:
    """Every registered opener, highest priority first."""
    SOURCES.import_from_location()
    openers = [cls() for cls in SOURCES.module_dict.values()
               if isinstance(cls, type) and issubclass(cls, SourceOpener)]
    return sorted(openers, key=lambda o: -o.priority)


def open_source(uri: str | os.PathLike, **options) -> FrameSource:
    """Open anything a registered opener accepts.

    Args:
        uri: a path, folder, glob, ``http://``/``rtsp://`` URL, bag or rig
            file, DICOM series folder...
        **options: passed to the chosen opener (``timeout_s``, ``stride``...).

    Raises:
        SourceError: no opener accepts ``uri``; the message lists the
            openers and plugins tried.
    """
    uri = os.fspath(uri)
    openers = registered_openers()
    for opener in openers:
        if opener.can_open(uri):
            return opener.open(uri, **options)
    from perception.plugins import describe_loaded_plugins
    tried = ', '.join(f'{type(o).__name__} (priority {o.priority})'
                      for o in openers)
    exists = 'exists' if os.path.exists(uri) else 'does not exist'
    raise SourceError(
        f"No source opener accepts '{redact_url(uri)}' (the path {exists}). Openers "
        f'tried: {tried}. Plugins loaded: {describe_loaded_plugins()}. '
        "Video, streams and bags need the driving plugin (pip install "
        "'perception-toolkit[driving]'); DICOM needs the medical plugin "
        "(pip install 'perception-toolkit[medical]').")


#: suffixes of the image files that image-folder sources and datasets accept
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm', '.pgm')


def camera_name(uri: str, paths: list[str] | None = None) -> str:
    """The camera name a single-camera source gives its frames when none is
    asked for: a video file's stem (``front.mp4`` -> ``front``), an image
    folder's name (``drive/left/`` -> ``left``), for an image file or a glob
    the name of the folder holding the images; ``cam0`` when there is none
    (``/``, a URL)."""
    if '://' in uri:
        return 'cam0'
    path = uri.rstrip('/\\') or uri
    if os.path.isdir(path):
        name = os.path.basename(os.path.abspath(path))
    elif paths is not None or any(ch in uri for ch in '*?['):
        folders = {os.path.dirname(os.path.abspath(p)) for p in paths or []}
        name = os.path.basename(folders.pop()) if len(folders) == 1 else ''
    else:
        name = os.path.splitext(os.path.basename(path))[0]
    return name or 'cam0'


def list_images(uri: str) -> list[str]:
    """Image files named by a file, a folder (not recursive) or a glob, in
    name order."""
    if any(ch in uri for ch in '*?['):
        paths = glob.glob(uri)
    elif os.path.isdir(uri):
        paths = [os.path.join(uri, n) for n in os.listdir(uri)]
    else:
        paths = [uri]
    return sorted(p for p in paths if p.lower().endswith(IMAGE_SUFFIXES)
                  and os.path.isfile(p))


def read_image(path: str, raw: bool = False) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), or in its native depth and
    channels (e.g. uint16 (H, W)) with ``raw=True``: the one reader,
    :func:`perception.data.image_io.read_image` (16-bit -> 8-bit by
    ``>> 8``), with errors as :class:`SourceError` naming the file."""
    # imported here: perception.data imports torch, a source listing not
    from perception.data.image_io import ImageReadError
    from perception.data.image_io import read_image as read
    try:
        return read(path, raw=raw)
    except ImageReadError as exc:
        raise SourceError(str(exc)) from exc


#: the timestamp sidecar of an image folder (see docs/rig.md)
SIDECAR_NAME = 'timestamps.csv'


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


class ImageSequenceSource(FrameSource):
    """Frames from image files in name order: the one image-folder source
    (the core's opener and the driving plugin's use it).

    Timestamps come from a sidecar CSV (``filename,timestamp_ns`` or
    ``filename,timestamp_s``; :data:`SIDECAR_NAME` beside the images, see
    docs/rig.md) when there is one, else from ``index / fps``. Pixels come
    from :func:`read_image` (RGB uint8, 16-bit by ``>> 8``; native depth
    with ``raw``); an unreadable file is a ``corrupt`` event, not a frame.

    Args:
        uri: an image file, a folder (not recursive) or a glob.
        paths: the image files (default: :func:`list_images` of ``uri``).
        fps: frame rate for index timestamps when there is no sidecar.
        raw: native depth and channels instead of RGB uint8.
        camera: ``Frame.camera`` (default: :func:`camera_name`).
        timeout_s: accepted for API symmetry; files never wait.
        sidecar: CSV of timestamps (default: the one beside the images,
            when present); ``False`` ignores any sidecar.
        stride: every ``stride``-th image.
    """

    def __init__(self, uri: str, paths: list[str] | None = None,
                 fps: float = 10.0, raw: bool = False,
                 camera: str | None = None, timeout_s: float | None = None,
                 sidecar: str | bool | None = None, stride: int = 1) -> None:
        super().__init__(uri, timeout_s)
        if int(stride) < 1 or fps <= 0:
            raise ValueError(f'{uri}: stride must be >= 1 and fps > 0 (got '
                             f'stride={stride}, fps={fps})')
        self.paths = list_images(uri) if paths is None else list(paths)
        if not self.paths:
            exists = os.path.exists(uri) or bool(glob.glob(uri))
            where = 'the path exists' if exists else 'the path does not exist'
            raise SourceError(f'{uri}: no image files found ({where}; '
                              f'suffixes {", ".join(IMAGE_SUFFIXES)})')
        self.fps, self.raw, self.stride = fps, raw, int(stride)
        self.camera = camera or camera_name(uri, self.paths)
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
            try:
                image = read_image(path, self.raw)
            except SourceError as exc:
                self.emit('corrupt', f'{exc}; skipped')
                continue
            if self.times is not None:
                t_ns, clock = self.times[index], 'sidecar'
            else:
                t_ns, clock = int(round(index * 1e9 / self.fps)), 'index'
            yield Frame(image, t_ns, index, self.camera,
                        {'clock': clock, 'path': path})
        self.emit('eos', f'{self.uri}: {len(self.paths)} files')


@SOURCES.register_module()
class ImageFileOpener(SourceOpener):
    """Core opener for an image file, a folder of images or a glob."""

    priority = 0

    def can_open(self, uri: str) -> bool:
        if '://' in uri:
            return False
        return bool(list_images(uri))

    def open(self, uri: str, fps: float = 10.0, raw: bool = False,
             camera: str | None = None, timeout_s: float | None = None,
             sidecar: str | bool | None = None,
             stride: int = 1) -> FrameSource:
        return ImageSequenceSource(uri, list_images(uri), fps, raw, camera,
                                   timeout_s, sidecar, stride)
