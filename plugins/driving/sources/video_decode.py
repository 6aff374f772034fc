"""Decoding a video stream with PyAV without losing frames silently: the
packet loop that always drains the decoder, and the clock that finds the
frames a damaged container lost from the presentation times."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass
class Undecodable:
    """A packet the decoder refused: byte position and reason."""

    pos: int
    why: str


def decoded_frames(container, stream, on_demux_error: Callable[[str], None]
                   ) -> Iterator:
    """Decoded frames of ``stream`` in presentation order, and
    :class:`Undecodable` for a packet that would not decode. The decoder
    is drained at the end, also when demuxing stops early, so frames a
    frame-threaded decoder still holds come out."""
    import av
    packets = container.demux(stream)
    drained = False
    while not drained:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            # The container itself is damaged past this point.
            on_demux_error(str(exc))
            break
        drained = packet.size == 0  # the demuxer's flush packet
        try:
            frames = packet.decode()
        except av.error.EOFError:
            return
        except av.error.FFmpegError as exc:
            if packet.size:
                yield Undecodable(packet.pos, str(exc))
            continue
        yield from frames
    if not drained:
        try:
            yield from stream.codec_context.decode(None)
        except av.error.FFmpegError:
            pass


def pts_to_ns(pts: int, num: int, den: int) -> int:
    """``int(pts * Fraction(num, den))`` in integers: a presentation time
    in nanoseconds from the stream's time base (``num`` the numerator times
    10**9), truncated toward zero as ``int()`` does, without a Fraction per
    frame."""
    whole = abs(pts) * num // den
    return whole if pts >= 0 else -whole


class GapClock:
    """Finds frames missing from a constant-rate stream by its
    presentation times.

    The frame duration is the smallest interval the stream shows (seen at
    least twice before a gap counts), so a container whose nominal rate is
    wrong does not make up gaps. An interval of n durations means n - 1
    frames are missing. Once an interval is not a whole number of
    durations, or the duration not a whole number of the container's
    nominal frame durations, the stream has a variable frame rate and gaps
    cannot be told from pauses: the clock stops looking (the end-of-file
    count still catches a short file).

    Args:
        nominal_ns: the container's frame duration, if it states one.
    """

    #: how far from a whole number of durations an interval may be
    TOLERANCE = 0.1

    def __init__(self, nominal_ns: float | None = None) -> None:
        self.nominal_ns = nominal_ns
        self.step_ns: float | None = None
        self.variable = False
        self.last_ns: int | None = None
        self._seen = 0  # intervals of one step

    def _whole(self, ratio: float) -> bool:
        return round(ratio) >= 1 and abs(ratio - round(ratio)) <= self.TOLERANCE

    def missing(self, t_ns: int) -> int:
        """Frames missing between the previous time and ``t_ns``."""
        previous = self.last_ns
        self.last_ns = t_ns if previous is None else max(previous, t_ns)
        if previous is None or t_ns <= previous or self.variable:
            return 0
        interval = float(t_ns - previous)
        step = self.step_ns
        if step is None or interval < step * (1 - self.TOLERANCE):
            consistent = step is None or self._whole(step / interval)
            if self.nominal_ns:
                consistent &= self._whole(interval / self.nominal_ns)
            self.variable = not consistent
            self.step_ns, self._seen = interval, 1
            return 0
        steps = interval / step
        if not self._whole(steps):
            self.variable = True
            return 0
        if round(steps) == 1:
            self._seen += 1
            return 0
        return round(steps) - 1 if self._seen >= 2 else 0


def tail_span(container, last_ns: int, step_ns: float | None
              ) -> tuple[int, int] | None:
    """Presentation times (ns) of the frames missing at the end of a cut
    file: after the last frame seen, up to the last frame the container's
    duration holds (None when the duration or frame duration is unknown)."""
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        end_ns = float(((stream.start_time or 0) + stream.duration)
                       * stream.time_base * 1_000_000_000)
    elif container.duration:  # microseconds
        end_ns = ((container.start_time or 0) + container.duration) * 1e3
    else:
        return None
    if step_ns is None:
        return None
    first, last = int(round(last_ns + step_ns)), int(round(end_ns - step_ns))
    return (first, last) if last >= first else None
