"""Live streams: ``http://`` MJPEG and ``rtsp://`` (through PyAV/FFmpeg).

A worker thread connects, reads and decodes; the caller only takes decoded
frames from a bounded queue, so a dead server or a stuck decoder can delay
frames but never hang the caller: no frame within ``timeout_s`` raises
:class:`~perception.sources.SourceTimeout`.

Buffering: ``'latest'`` keeps only the newest frame (inference: always act
on the present); ``'fifo'`` keeps up to ``queue_size`` frames in order
(recording) and drops new frames when full. Every drop is counted and
reported as a ``dropped`` event; a lost connection is a ``stall`` event and
the worker reconnects with capped exponential backoff, reporting the gap in
a ``reconnect`` event (and ``meta['gap_s']`` on the first frame after it).
Incomplete or undecodable images (a JPEG is checked to decode without a
single libjpeg warning, see :mod:`.mjpeg`) are ``corrupt`` events, never
frames, so no black, grey or repeated pictures come out. A timeout says
whether the stream was connected and stalled or never connected.
"""
from __future__ import annotations

import collections
import http.client
import socket
import threading
import time
import urllib.parse
from typing import Iterator

import numpy as np

from perception.registry import SOURCES
from perception.sources import (
    EventKind,
    Frame,
    FrameSource,
    SourceError,
    SourceOpener,
    SourceTimeout,
)

from .mjpeg import ImageDecodeError, MultipartReader, decode_image

BUFFERING = ('latest', 'fifo')


class _Lost(Exception):
    """The connection ended or stopped delivering; reconnect."""


class StreamSource(FrameSource):
    """Frames of a live MJPEG-over-HTTP or RTSP stream, by arrival time.

    Args:
        uri: ``http(s)://`` URL of a ``multipart/x-mixed-replace`` MJPEG
            stream, or an ``rtsp://`` URL.
        buffering: 'latest' or 'fifo' (see the module docstring).
        queue_size: frames kept; default 1 for 'latest', 256 for 'fifo'.
        timeout_s: longest wait for the next frame before
            :class:`SourceTimeout` (None: wait forever).
        reconnect: reconnect after a lost connection (else end the stream).
        max_reconnects: give up after this many failed attempts in a row
            (None: keep trying until closed).
        backoff_s, backoff_max_s: first and largest wait between attempts;
            the wait doubles after each failure.
        read_timeout_s: no bytes for this long counts as a lost connection.
        camera: ``Frame.camera``.
        rtsp_transport: 'tcp' or 'udp'.
        max_events: the newest events kept in ``events`` (``stats`` counts
            them all).
    """

    def __init__(self, uri: str, buffering: str = 'latest',
                 queue_size: int | None = None,
                 timeout_s: float | None = 10.0, reconnect: bool = True,
                 max_reconnects: int | None = None, backoff_s: float = 0.1,
                 backoff_max_s: float = 5.0, read_timeout_s: float = 2.0,
                 camera: str = 'cam0', rtsp_transport: str = 'tcp',
                 max_events: int = 10_000) -> None:
        super().__init__(uri, timeout_s)
        if buffering not in BUFFERING:
            raise ValueError(f"{self.uri}: buffering must be 'latest' or 'fifo', "
                             f'got {buffering!r}')
        self.buffering = buffering
        self.queue_size = int(queue_size or (1 if buffering == 'latest'
                                             else 256))
        self.reconnect, self.max_reconnects = reconnect, max_reconnects
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.read_timeout_s, self.camera = read_timeout_s, camera
        self.rtsp_transport = rtsp_transport
        self.scheme = urllib.parse.urlsplit(uri).scheme.lower()
        # A live source runs for hours: keep the latest events only;
        # ``stats`` keeps the full counts.
        self.events = collections.deque(maxlen=max_events)
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending_drops = 0
        self._finished = False
        self._error: str | None = None
        self._last_problem = 'not connected yet'
        # monotonic times of the current connection, its last bytes and the
        # last frame (None: not connected), for the timeout message
        self._connected_t: float | None = None
        self._data_t: float | None = None
        self._frame_t: float | None = None
        self._closer = None  # unblocks the worker's current read
        self._received = 0
        self._last_ns = 0
        self._worker = threading.Thread(target=self._run, daemon=True,
                                        name=f'stream {self.uri}')
        self._worker.start()

    # -- events from two threads --------------------------------------
    def emit(self, kind: EventKind, detail: str = '', count: int = 1,
             span_ns: tuple[int, int] | None = None) -> None:
        with self._lock:
            super().emit(kind, detail, count, span_ns)

    # -- consumer side ---------------------------------------------------
    def _iter_frames(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                start = time.monotonic()
                while not self._queue and not self._finished:
                    waited = time.monotonic() - start
                    if self.timeout_s is not None and waited >= self.timeout_s:
                        raise SourceTimeout(self._timeout_message())
                    step = 0.1 if self.timeout_s is None else min(
                        0.1, self.timeout_s - waited)
                    self._cond.wait(max(step, 0.001))
                frame = self._queue.popleft() if self._queue else None
                drops, self._pending_drops = self._pending_drops, 0
            if drops:
                self.emit('dropped', f'{self.uri}: {drops} frames dropped '
                          f"(queue of {self.queue_size} full, buffering "
                          f"'{self.buffering}')", drops)
            if frame is None:
                if self._error:
                    raise SourceError(self._error)
                self.emit('eos', f'{self.uri}: stream ended')
                return
            yield frame

    def _timeout_message(self) -> str:
        now = time.monotonic()
        connected, data_t = self._connected_t, self._data_t
        if connected is None:
            return (f'{self.uri}: no frame within {self.timeout_s} s (last '
                    f'problem: {self._last_problem}); check that the '
                    'camera/server is up and sending, or raise timeout_s')
        since = max(connected, self._frame_t or connected)
        data = ('no bytes since' if data_t is None
                else f'last bytes {now - data_t:.1f} s ago')
        return (f'{self.uri}: no frame within {self.timeout_s} s: connected '
                f'{now - connected:.1f} s ago, but the stream stalled (no '
                f'complete frame for {now - since:.1f} s, {data}); check '
                'that the camera is still sending, or raise timeout_s (or '
                'lower read_timeout_s to reconnect sooner)')

    def _on_data(self, size: int = 0) -> None:
        self._data_t = time.monotonic()

    # -- worker side -----------------------------------------------------
    def _push(self, image: np.ndarray, meta: dict) -> None:
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        frame = Frame(image, now, self._received, self.camera,
                      dict(meta, clock='arrival'))
        self._received += 1
        with self._cond:
            if len(self._queue) >= self.queue_size:
                self._pending_drops += 1
                if self.buffering == 'latest':
                    self._queue.popleft()
                    self._queue.append(frame)
            else:
                self._queue.append(frame)
            self._cond.notify_all()

    def _end(self, error: str | None = None) -> None:
        with self._cond:
            self._error, self._finished = error, True
            self._cond.notify_all()

    def _run(self) -> None:
        failures, lost_at, last_frame_t = 0, None, None
        while not self._stop.is_set():
            reader = (self._read_rtsp if self.scheme == 'rtsp'
                      else self._read_http)
            state = {'frames': 0}

            def on_frame(image: np.ndarray, meta: dict) -> None:
                nonlocal failures, lost_at, last_frame_t
                now = time.monotonic()
                if lost_at is not None and state['frames'] == 0:
                    gap = now - (last_frame_t or lost_at)
                    meta = dict(meta, gap_s=gap, after_reconnect=True)
                    self.emit('reconnect', f'{self.uri}: reconnected after '
                              f'{failures + 1} attempt(s); no frames for '
                              f'{gap:.2f} s', 1)
                    lost_at = None
                failures = 0
                state['frames'] += 1
                last_frame_t = self._frame_t = now
                self._push(image, meta)

            try:
                reader(on_frame)
                problem = 'the server closed the stream'
            except SourceError as exc:  # not a stream we can read: final
                self._end(str(exc))
                return
            except (_Lost, OSError, http.client.HTTPException) as exc:
                problem = f'{type(exc).__name__}: {exc}'
            except Exception as exc:  # decoder/library errors: retry too
                problem = f'{type(exc).__name__}: {exc}'
            self._connected_t = None
            if self._stop.is_set():
                break
            self._last_problem = problem
            if state['frames'] or lost_at is None:
                lost_at = time.monotonic()
                self.emit('stall', f'{self.uri}: {problem}')
            else:
                failures += 1
            if not self.reconnect:
                break
            if (self.max_reconnects is not None
                    and failures >= self.max_reconnects):
                self._end(f'{self.uri}: gave up after {failures} reconnect '
                          f'attempts (last problem: {problem})')
                return
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** failures)
            self._stop.wait(delay)
        self._end()

    def _read_http(self, on_frame) -> None:
        parts = urllib.parse.urlsplit(self.connect_uri)
        cls = (http.client.HTTPSConnection if parts.scheme == 'https'
               else http.client.HTTPConnection)
        conn = cls(parts.hostname, parts.port, timeout=self.read_timeout_s)
        try:
            path = parts.path or '/'
            conn.request('GET', path + (f'?{parts.query}' if parts.query
                                        else ''))
            # Keep the socket: http.client hands it to the response, and
            # close() shuts it down to wake a blocked read at once.
            self._closer = conn.sock
            resp = conn.getresponse()
            if resp.status != 200:
                raise _Lost(f'HTTP {resp.status} {resp.reason}')
            ctype = resp.getheader('Content-Type', '')
            if 'multipart' not in ctype.lower():
                raise SourceError(
                    f"{self.uri}: Content-Type '{ctype}' is not an MJPEG "
                    'stream (multipart/x-mixed-replace); use the camera\'s '
                    'MJPEG URL, or rtsp:// for H.264 cameras')
            self._connected_t = self._data_t = time.monotonic()
            reader = MultipartReader(resp, _boundary(ctype), self._stop,
                                     self._on_data)
            for part in reader:
                if not part.complete:
                    self.emit('corrupt', f'{self.uri}: part of '
                              f'{len(part.data)} bytes cut short by the end '
                              'of the stream; skipped')
                    continue
                try:
                    image = decode_image(part.data)
                except ImageDecodeError as exc:
                    self.emit('corrupt', f'{self.uri}: part of '
                              f'{len(part.data)} bytes is not a complete '
                              f'image ({exc}); skipped')
                    continue
                on_frame(image, {})
        except socket.timeout as exc:
            raise _Lost(f'no data for {self.read_timeout_s} s') from exc
        finally:
            self._closer = None
            conn.close()

    def _read_rtsp(self, on_frame) -> None:
        import av
        try:
            container = av.open(
                self.connect_uri, options={'rtsp_transport': self.rtsp_transport},
                timeout=(max(self.read_timeout_s, 2.0), self.read_timeout_s))
        except av.error.FFmpegError as exc:
            raise _Lost(f'cannot connect ({exc})') from exc
        try:
            if not container.streams.video:
                raise SourceError(f'{self.uri}: the stream has no video')
            self._connected_t = self._data_t = time.monotonic()
            stream = container.streams.video[0]
            base = stream.time_base
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                self._on_data(packet.size)
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as exc:
                    self.emit('corrupt', f'{self.uri}: undecodable packet '
                              f'({exc}); skipped')
                    continue
                for frame in frames:
                    if frame.is_corrupt:
                        self.emit('corrupt', f'{self.uri}: corrupt frame '
                                  'skipped')
                        continue
                    meta = {}
                    if frame.pts is not None and base is not None:
                        meta['pts_ns'] = int(frame.pts * base * 1_000_000_000)
                    on_frame(frame.to_ndarray(format='rgb24'), meta)
        except av.error.FFmpegError as exc:
            raise _Lost(str(exc)) from exc
        finally:
            container.close()

    def _close(self) -> None:
        self._stop.set()
        closer = self._closer
        if closer is not None:
            try:  # wake a blocked recv() at once
                closer.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._worker.join(self.read_timeout_s + 1.0)
        with self._cond:
            self._queue.clear()


def _boundary(content_type: str) -> bytes:
    for param in content_type.split(';')[1:]:
        key, _, value = param.strip().partition('=')
        if key.lower() == 'boundary':
            value = value.strip().strip('"')
            return (value[2:] if value.startswith('--') else value).encode()
    return b''


@SOURCES.register_module()
class StreamOpener(SourceOpener):
    """``http(s)://`` MJPEG and ``rtsp://`` live streams."""

    priority = 200

    def can_open(self, uri: str) -> bool:
        return uri.lower().startswith(('http://', 'https://', 'rtsp://',
                                       'rtsps://'))

    def open(self, uri: str, **options) -> FrameSource:
        return StreamSource(uri, **options)
