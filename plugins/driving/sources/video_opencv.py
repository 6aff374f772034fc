"""The OpenCV backend of :class:`~.video.VideoSource`: ``cv2.VideoCapture``,
used when PyAV is not installed or cannot open the file (or when asked
for with ``backend='opencv'``).

OpenCV gives no decoder flags and no presentation-time gaps, so this path
reports frames that cannot be retrieved or whose timestamps do not
increase (``corrupt`` events), and a file shorter than the frame count
OpenCV reports (``dropped``, through ``VideoSource._finish``).
"""
from __future__ import annotations

from typing import Iterator

from perception.sources import Frame, SourceError

from .orientation import Orientation


class OpenCvBackend:
    """Opening, reading and counting through ``cv2.VideoCapture``, mixed
    into :class:`~.video.VideoSource`, which provides ``uri``, ``stride``,
    ``emit`` and the helpers shared with the PyAV path (``_why_unreadable``,
    ``_in_range``, ``_update_fps``, ``_frame``, ``_finish``)."""

    def _open_opencv(self, pyav_error: Exception | None) -> str:
        """Open ``self.uri`` with OpenCV; ``pyav_error``, why PyAV could
        not, explains the failure when OpenCV cannot either."""
        import cv2
        capture = cv2.VideoCapture(self.uri)
        if not capture.isOpened():
            capture.release()
            why = (self._why_unreadable(pyav_error) if pyav_error else
                   f'{self.uri}: OpenCV cannot open the video')
            raise SourceError(why)
        self._capture = capture
        return 'opencv'

    def _iter_opencv(self) -> Iterator[Frame]:
        import cv2
        capture = self._capture
        # OpenCV would rotate by itself (and ignore mirroring); turn the
        # picture here so both backends record the same orientation.
        capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        clockwise = capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0
        orientation = Orientation(int(round(-clockwise / 90)) % 4 * 90)
        index, in_range, last_ns = -1, 0, None
        while True:
            ok = capture.grab()
            if not ok:
                break
            index += 1
            t_ns = int(round(capture.get(cv2.CAP_PROP_POS_MSEC) * 1e6))
            where = self._in_range(t_ns)
            if where > 0:
                self._finish(index, ended_early=True)
                return
            if where < 0 or in_range % self.stride:
                in_range += where == 0
                continue
            in_range += 1
            ok, bgr = capture.retrieve()
            if not ok or bgr is None:
                self.emit('corrupt', f'{self.uri}: frame {index} cannot be '
                          'decoded; skipped')
                continue
            if last_ns is not None and t_ns <= last_ns:
                self.emit('corrupt', f'{self.uri}: frame {index} has '
                          f'timestamp {t_ns} ns, not after {last_ns} ns; '
                          'skipped')
                continue
            self._update_fps(index, t_ns)
            last_ns = t_ns
            yield self._frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t_ns,
                              index, 'pts', orientation)
        self._finish(index + 1, ended_early=False)

    def _opencv_frame_count(self) -> int:
        """The frame count OpenCV reports (0 when it does not know)."""
        import cv2
        return max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
