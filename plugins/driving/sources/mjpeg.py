"""MJPEG over HTTP: the parts of a ``multipart/x-mixed-replace`` body and a
strict JPEG decoder.

A part without ``Content-Length`` ends where its JPEG ends: the JPEG's
marker segments are walked to its end-of-image marker, so a frame is
delivered as soon as its last byte arrives (not when the next part's
boundary comes, one frame late) and the last frame before a hang-up is
kept. A JPEG counts as a picture only when libjpeg-turbo decodes it with
no warning: a truncated JPEG with an end marker appended decodes in OpenCV
with only "premature end of data segment" on stderr and a grey bottom, and
here it is an error.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

#: bytes asked of the socket per read
CHUNK = 1 << 16


class ImageDecodeError(ValueError):
    """A part is not a complete, fully decodable image."""


@dataclass
class Part:
    """One body of a multipart stream; ``complete`` is False when the
    stream ended inside it."""

    data: bytes
    complete: bool = True


def decode_image(data: bytes) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a part: JPEG through libjpeg-turbo with
    warnings as errors (simplejpeg ``strict``), other formats through
    OpenCV.

    Raises:
        ImageDecodeError: the image is truncated, damaged or not an image.
    """
    if data[:2] == b'\xff\xd8':
        try:
            import simplejpeg
        except ImportError as exc:  # a dependency of the driving plugin
            raise ImageDecodeError(
                'simplejpeg is not installed, and JPEG frames are only '
                'accepted after a strict decode (pip install simplejpeg)'
            ) from exc
        try:
            return simplejpeg.decode_jpeg(data, colorspace='RGB', strict=True)
        except ValueError as exc:
            raise ImageDecodeError(str(exc).strip()) from None
    import cv2
    bgr = None
    if len(data) > 8:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError('not a decodable image')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def jpeg_end(buf: bytes | bytearray, start: int) -> int | None:
    """Index just past the end-of-image marker of the JPEG that starts at
    ``buf[start]`` (its SOI), None while it is not all there, -1 when its
    marker structure is broken (then only a boundary or the end of the
    stream ends the part)."""
    n, pos = len(buf), start + 2
    while True:
        if pos + 2 > n:
            return None
        if buf[pos] != 0xFF:
            return -1
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            pos += 2
            continue
        if pos + 4 > n:
            return None
        pos += 2 + (buf[pos + 2] << 8 | buf[pos + 3])
        if marker != 0xDA:
            continue
        # Entropy-coded data: 0xFF is followed by 0x00 (stuffing) or a
        # restart marker inside it; any other marker ends it.
        while True:
            ff = buf.find(b'\xff', pos)
            if ff < 0 or ff + 1 >= n:
                return None
            following = buf[ff + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos = ff + 2
            elif following == 0xFF:
                pos = ff + 1
            else:
                pos = ff
                break


class MultipartReader:
    """Parts of a multipart body read from ``resp`` (anything with
    ``read1``, e.g. :class:`http.client.HTTPResponse`), each as soon as it
    is complete.

    Args:
        resp: the response body.
        boundary: the boundary from the Content-Type (without ``--``).
        stop: set to stop reading between chunks.
        on_data: called with the size of every chunk received.
    """

    def __init__(self, resp, boundary: bytes, stop: threading.Event,
                 on_data: Callable[[int], None] | None = None) -> None:
        self.resp, self.stop, self.on_data = resp, stop, on_data
        self.marker = b'--' + boundary if boundary else b'--'
        self.buf = bytearray()
        self.eof = False
        #: bytes received so far (the stream's liveness, not its frames)
        self.received = 0

    def _fill(self) -> bool:
        if self.eof or self.stop.is_set():
            return False
        chunk = self.resp.read1(CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.received += len(chunk)
        if self.on_data is not None:
            self.on_data(len(chunk))
        self.buf += chunk
        return True

    def _headers(self) -> dict[bytes, bytes] | None:
        """Skip to the next boundary, parse the part headers and drop them
        from the buffer; None at the end of the stream."""
        while True:
            at = self.buf.find(self.marker)
            if at >= 0:
                end = self.buf.find(b'\n', at)
                if end >= 0:
                    del self.buf[:end + 1]
                    break
            elif len(self.buf) > len(self.marker):  # keep a split marker
                del self.buf[:len(self.buf) - len(self.marker)]
            if not self._fill():
                return None
        headers: dict[bytes, bytes] = {}
        while True:
            end = self.buf.find(b'\n')
            if end < 0:
                if not self._fill():
                    return None
                continue
            line = bytes(self.buf[:end]).strip()
            del self.buf[:end + 1]
            if not line:
                return headers
            key, _, value = line.partition(b':')
            headers[key.strip().lower()] = value.strip()

    def _take(self, size: int) -> Part:
        while len(self.buf) < size and self._fill():
            pass
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return Part(data, len(data) == size)

    def _until_end(self) -> Part:
        """A body without Content-Length: a JPEG up to its end marker,
        anything else up to the next boundary or the end of the stream."""
        walkable = True
        while True:
            if walkable and self.buf[:2] == b'\xff\xd8':
                end = jpeg_end(self.buf, 0)
                if end is not None and end > 0:
                    return self._take(end)
                walkable = end is None
            at = self.buf.find(b'\n' + self.marker)
            if at >= 0:
                data = bytes(self.buf[:at]).rstrip(b'\r')
                del self.buf[:at + 1]
                return Part(data)
            if not self._fill():
                if self.stop.is_set():
                    return Part(b'', False)
                data = bytes(self.buf).rstrip(b'\r\n')
                self.buf.clear()
                # The end of the stream ends a non-JPEG part; a JPEG
                # without its end marker is cut short.
                return Part(data, not data.startswith(b'\xff\xd8'))

    def __iter__(self) -> Iterator[Part]:
        while not self.stop.is_set():
            headers = self._headers()
            if headers is None:
                return
            length = headers.get(b'content-length')
            if length is not None and length.isdigit():
                part = self._take(int(length))
            else:
                part = self._until_end()
            if self.stop.is_set():
                return
            if part.data or not part.complete:
                yield part
            if not part.complete:
                return
