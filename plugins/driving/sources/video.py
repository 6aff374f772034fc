"""Video files: PyAV (presentation timestamps) by default, OpenCV as fallback
(:mod:`.video_opencv`).

Frames come as RGB uint8 (H, W, 3) with ``timestamp_ns`` the frame's
presentation time (``meta['clock'] == 'pts'``), turned upright as the
file's display matrix (or ``rotate`` tag) says (``meta['orientation']``;
``apply_rotation=False`` keeps the stored orientation).

Nothing is lost silently. Frames the decoder flags as corrupt, or packets
it cannot decode, are ``corrupt`` events. Frames a damaged container lost
(the demuxer skipped them) are ``dropped`` events with their count and
time span (``SourceEvent.span_ns``): in a constant-rate stream, a jump of
the presentation times by several frame durations; at the end, what the
container lists (frame count, or duration) beyond the last frame. Indices
stay those of the file, and ``stats['fps']`` is the stream's rate (frame
positions over presentation time, lost frames counted), not that of the
frames that survived; for variable-frame-rate files it is the mean rate.
The decoder is always drained, so frame-threaded decoding gives every
decodable frame of a cut file.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterator

import numpy as np

from perception.registry import SOURCES
from perception.sources import Frame, FrameSource, SourceError, SourceOpener, camera_name

from .orientation import Orientation, display_orientation, stream_tag_orientation
from .video_convert import RgbConverter
from .video_decode import GapClock, Undecodable, decoded_frames, pts_to_ns, tail_span
from .video_opencv import OpenCvBackend

VIDEO_SUFFIXES = ('.mp4', '.m4v', '.mkv', '.avi', '.mov', '.webm', '.ts',
                  '.mts', '.m2ts', '.h264', '.264', '.h265', '.hevc', '.mpg',
                  '.mpeg', '.flv', '.wmv', '.mjpeg', '.mjpg', '.ivf')
BACKENDS = ('auto', 'pyav', 'opencv')


class VideoSource(OpenCvBackend, FrameSource):
    """Frames of one video file.

    Args:
        uri: path of the video file.
        stride: yield every ``stride``-th frame of the range (indices stay
            those of the file).
        start_s: first presentation time to yield, seconds (inclusive).
            Frames before it are decoded but not converted, so indices
            stay exact (no keyframe seek).
        end_s: presentation time to stop at, seconds (exclusive).
        backend: 'pyav', 'opencv' or 'auto' (PyAV, OpenCV if PyAV is not
            installed or cannot open the file).
        camera: ``Frame.camera`` (default: the file's stem,
            :func:`perception.sources.camera_name`).
        threads: decoder threads (0: the decoder's choice).
        fps: frame rate for files without timestamps (raw ``.h264``
            streams); default: the rate coded in the bitstream.
        timeout_s: accepted for API symmetry; files never wait.
        apply_rotation: turn frames as the display matrix / rotate tag
            says (default); False keeps the stored orientation (both
            record it in ``meta['orientation']``).
        intrinsics: (3, 3) camera matrix of the stored picture; frames
            carry ``meta['intrinsics']`` for the picture they show
            (rotated principal point and focal lengths).
    """

    def __init__(self, uri: str, stride: int = 1, start_s: float | None = None,
                 end_s: float | None = None, backend: str = 'auto',
                 camera: str | None = None, threads: int = 0,
                 fps: float | None = None,
                 timeout_s: float | None = None,
                 apply_rotation: bool = True,
                 intrinsics=None) -> None:
        super().__init__(uri, timeout_s)
        if int(stride) < 1:
            raise ValueError(f'{uri}: stride must be >= 1, got {stride}')
        if backend not in BACKENDS:
            raise ValueError(f'{uri}: backend must be one of {BACKENDS}, got '
                             f'{backend!r}')
        if start_s is not None and end_s is not None and end_s <= start_s:
            raise ValueError(f'{uri}: end_s ({end_s}) must be after start_s '
                             f'({start_s})')
        if not os.path.isfile(uri):
            raise SourceError(f'{uri}: video file does not exist; check the '
                              'path (relative paths are relative to the '
                              f'working directory {os.getcwd()})')
        self.stride, self.threads = int(stride), threads
        self.camera = camera or camera_name(uri)
        if fps is not None and fps <= 0:
            raise ValueError(f'{uri}: fps must be > 0, got {fps}')
        self.fps = fps
        self.apply_rotation = bool(apply_rotation)
        self.intrinsics = None
        if intrinsics is not None:
            self.intrinsics = np.asarray(intrinsics, np.float64)
            if self.intrinsics.shape != (3, 3):
                raise ValueError(f'{uri}: intrinsics must be a 3x3 camera '
                                 f'matrix, got shape {self.intrinsics.shape}')
        self.start_ns = None if start_s is None else int(round(start_s * 1e9))
        self.end_ns = None if end_s is None else int(round(end_s * 1e9))
        self._container = None
        self._capture = None  # the OpenCV backend's (video_opencv.py)
        self._broken_refs = False
        self._first: tuple[int, int] | None = None
        self._clock: GapClock | None = None
        self._convert: RgbConverter | None = None
        self.backend = self._open(backend)

    # -- opening ---------------------------------------------------------
    def _open(self, backend: str) -> str:
        pyav_error = None
        if backend in ('auto', 'pyav'):
            try:
                import av
            except ImportError as exc:
                pyav_error = exc
                if backend == 'pyav':
                    raise SourceError(f'{self.uri}: PyAV is not installed '
                                      '(pip install av)') from exc
            else:
                try:
                    self._container = av.open(self.uri)
                    if not self._container.streams.video:
                        raise SourceError(f'{self.uri}: the file has no video '
                                          'stream')
                    return 'pyav'
                except av.error.FFmpegError as exc:
                    pyav_error = exc
                    if backend == 'pyav':
                        raise SourceError(self._why_unreadable(exc)) from exc
        return self._open_opencv(pyav_error)

    def _why_unreadable(self, exc: Exception) -> str:
        size = os.path.getsize(self.uri)
        hint = ('the file is empty' if size == 0 else
                'it may be truncated (an MP4/MOV whose index, the moov atom, '
                'was never written) or not a video; re-copy or re-encode it, '
                'or record to .mkv/.ts which stay readable when cut short')
        return f'{self.uri}: cannot open the video ({exc}); {hint}'

    # -- reading ---------------------------------------------------------
    def _iter_frames(self) -> Iterator[Frame]:
        if self.backend == 'pyav':
            yield from self._iter_pyav()
        else:
            yield from self._iter_opencv()

    def _in_range(self, t_ns: int) -> int:
        """-1 before the range, 0 inside, 1 past it."""
        if self.start_ns is not None and t_ns < self.start_ns:
            return -1
        if self.end_ns is not None and t_ns >= self.end_ns:
            return 1
        return 0

    def _iter_pyav(self) -> Iterator[Frame]:
        container = self._container
        stream = container.streams.video[0]
        # Frame-threaded decoding: what makes PyAV match ffmpeg's own speed.
        stream.thread_type = 'AUTO'
        if self.threads:
            stream.thread_count = self.threads
        base = stream.time_base or Fraction(1, 1)
        base_num, base_den = base.numerator * 1_000_000_000, base.denominator
        self._convert = convert = RgbConverter()
        tag_orientation = stream_tag_orientation(stream)
        fallback_rate = self._index_rate(stream)
        rate = stream.average_rate or stream.guessed_rate
        self._clock = clock_ = GapClock(1e9 / float(rate) if rate else None)
        index, in_range, last_ns = -1, 0, None
        unaccounted = 0  # undecodable packets since the last frame

        def demux_error(why: str) -> None:
            self.emit('corrupt', f'{self.uri}: demuxing stopped ({why})')

        for frame in decoded_frames(container, stream, demux_error):
            if isinstance(frame, Undecodable):
                # One packet is one frame in every container we read: count
                # it so later indices stay those of the file.
                index += 1
                unaccounted += 1
                self._broken_refs = True
                self.emit('corrupt', f'{self.uri}: packet at byte '
                          f'{frame.pos}: cannot decode ({frame.why}); skipped')
                continue
            t_pts = (None if frame.pts is None
                     else pts_to_ns(frame.pts, base_num, base_den))
            if t_pts is not None:
                before = clock_.last_ns
                lost = clock_.missing(t_pts) - unaccounted
                if lost > 0:
                    self._report_gap(before, t_pts, lost)
                    index += lost
                    self._broken_refs = True
            unaccounted = 0
            index += 1
            if frame.is_corrupt:
                self._broken_refs = True
                self.emit('corrupt', f'{self.uri}: frame {index} is '
                          'flagged corrupt by the decoder; skipped')
                continue
            if self._broken_refs and not frame.key_frame:
                # Frames predicted from a lost frame are concealment
                # guesses (old content), not pictures: wait for a
                # keyframe.
                self.emit('corrupt', f'{self.uri}: frame {index} refers '
                          'to a lost or corrupt frame; skipped until the '
                          'next keyframe')
                continue
            self._broken_refs = False
            if t_pts is not None:
                t_ns, clock = t_pts, 'pts'
            elif fallback_rate:
                t_ns = int(round(index * 1e9 / fallback_rate))
                clock = 'index'
            else:
                t_ns, clock = index, 'index'
            if last_ns is not None and t_ns <= last_ns:
                self.emit('corrupt', f'{self.uri}: frame {index} has '
                          f'timestamp {t_ns} ns, not after the previous '
                          f'{last_ns} ns; skipped')
                continue
            where = self._in_range(t_ns)
            if where > 0:
                self._finish(index, ended_early=True)
                return
            if where < 0:
                continue
            if in_range % self.stride == 0:
                image = convert(frame)
                self._update_fps(index, t_ns)
                last_ns = t_ns
                shown = display_orientation(frame)
                yield self._frame(image, t_ns, index, clock,
                                  tag_orientation if shown is None else shown)
                del image  # the converter reuses arrays nobody holds
            else:
                last_ns = t_ns
            in_range += 1
        self._finish(index + 1, ended_early=False, last_ns=clock_.last_ns)

    def _report_gap(self, before_ns: int, after_ns: int, lost: int) -> None:
        step = self._clock.step_ns
        span = (int(round(before_ns + step)), int(round(after_ns - step)))
        self.emit('dropped', f'{self.uri}: {lost} frames missing between '
                  f'{before_ns / 1e9:.2f} s and {after_ns / 1e9:.2f} s (the '
                  'container is damaged there; the demuxer skipped them)',
                  lost, span)

    def _frame(self, image: np.ndarray, t_ns: int, index: int, clock: str,
               orientation: Orientation) -> Frame:
        height, width = image.shape[:2]
        meta = {'clock': clock, 'path': self.uri}
        apply = self.apply_rotation and not orientation.identity
        if not orientation.identity:
            meta['orientation'] = orientation.meta(width, height, apply)
            meta['rotation'] = orientation.rotation if apply else 0
        if apply:
            image = orientation.apply(image)
        if self.intrinsics is not None:
            K = (orientation.intrinsics(self.intrinsics, width, height)
                 if apply else self.intrinsics)
            meta['intrinsics'] = K.astype(np.float32)
        return Frame(image, t_ns, index, self.camera, meta)

    def _index_rate(self, stream) -> float:
        """Frames/s for streams without timestamps: the ``fps`` option,
        else the rate coded in the bitstream (H.264 VUI timing), else
        FFmpeg's guess; ``stats['index_fps_from']`` says which."""
        for origin, rate in (('option', self.fps),
                             ('bitstream', stream.codec_context.framerate),
                             ('guess', stream.guessed_rate)):
            if rate:
                self.stats['index_fps_from'] = origin
                return float(rate)
        return 0.0

    def _update_fps(self, index: int, t_ns: int) -> None:
        # Frames per second of the file (positions over time, so stride
        # and skipped corrupt frames do not bias it); for variable frame
        # rate files this is the mean rate.
        if self._first is None:
            self._first = (index, t_ns)
        first_index, first_ns = self._first
        if t_ns > first_ns:
            self.stats['fps'] = (index - first_index) * 1e9 / (t_ns - first_ns)

    def expected_frames(self) -> int:
        """Frames the file should hold: the container's count, else its
        duration times the measured frame rate (0 when neither is known)."""
        if self._container is not None:
            stream = self._container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            duration = self._container.duration  # microseconds
            fps = self.stats.get('fps')
            if duration and fps:
                return int(round(duration / 1e6 * fps))
            return 0
        return self._opencv_frame_count()

    def _listed_count(self) -> bool:
        return bool(self._container is not None
                    and self._container.streams.video[0].frames)

    def _finish(self, decoded: int, ended_early: bool,
                last_ns: int | None = None) -> None:
        """``decoded``: frame positions reached (lost ones included);
        ``last_ns``: presentation time of the last frame seen."""
        self.stats['decoded'] = decoded
        expected = self.expected_frames()
        self.stats['expected_frames'] = expected
        # A count estimated from the duration may be off by one frame.
        slack = 0 if self._listed_count() else 1
        if (not ended_early and self.start_ns is None and expected
                and decoded < expected - slack):
            span, when = self._tail_span(last_ns), ''
            if span is not None:
                when = (f', {span[0] / 1e9:.2f} s to {span[1] / 1e9:.2f} s'
                        ' are missing')
            self.emit('dropped', f'{self.uri}: the container lists {expected} '
                      f'frames but only {decoded} could be decoded (file '
                      f'truncated or damaged{when})', expected - decoded,
                      span)
        self.emit('eos', f'{self.uri}: {decoded} frames decoded')

    def _tail_span(self, last_ns: int | None) -> tuple[int, int] | None:
        if self._container is None or last_ns is None:
            return None
        step = self._clock.step_ns if self._clock else None
        if step is None and self.stats.get('fps'):
            step = 1e9 / self.stats['fps']
        return tail_span(self._container, last_ns, step)

    def _close(self) -> None:
        if self._convert is not None:
            self._convert.close()
        if self._container is not None:
            self._container.close()
        if self._capture is not None:
            self._capture.release()


def probe_fps(uri: str, max_frames: int = 120) -> float:
    """Frame rate measured from the first ``max_frames`` presentation
    timestamps (median interval), not from the container's metadata."""
    with VideoSource(uri) as source:
        times = []
        for frame in source:
            times.append(frame.timestamp_ns)
            if len(times) >= max_frames:
                break
    if len(times) < 2:
        raise SourceError(f'{uri}: fewer than two frames; no frame rate')
    return float(1e9 / np.median(np.diff(times)))


@SOURCES.register_module()
class VideoOpener(SourceOpener):
    """Opens video files (by suffix) with :class:`VideoSource`."""

    priority = 200

    def can_open(self, uri: str) -> bool:
        return '://' not in uri and uri.lower().endswith(VIDEO_SUFFIXES)

    def open(self, uri: str, **options) -> FrameSource:
        return VideoSource(uri, **options)
