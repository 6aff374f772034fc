"""MJPEG parts: the JPEG end found by walking its markers (thumbnails,
progressive scans, split reads), the strict decode, and multipart bodies
read from a byte stream."""
import io
import threading

import cv2
import numpy as np
import pytest
from driving_fixtures import coded_frame, frame_code
from driving_servers import jpeg_bytes

from perception_driving.sources.mjpeg import (
    ImageDecodeError,
    MultipartReader,
    decode_image,
    jpeg_end,
)


def with_thumbnail(jpeg: bytes) -> bytes:
    """``jpeg`` with an APP1 segment holding a whole second JPEG (as EXIF
    thumbnails do): its FFD9 is not the end of the picture."""
    thumb = jpeg_bytes(coded_frame(9, 16, 24))
    segment = b'Exif\x00\x00' + thumb
    app1 = b'\xff\xe1' + (len(segment) + 2).to_bytes(2, 'big') + segment
    return jpeg[:2] + app1 + jpeg[2:]


@pytest.mark.parametrize('kind', ['baseline', 'progressive', 'thumbnail',
                                  'restart'])
def test_jpeg_end_walks_the_markers(kind):
    image = coded_frame(5)
    params = {'progressive': [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
              'restart': [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]}.get(kind, [])
    ok, data = cv2.imencode('.jpg', image[..., ::-1], params)
    data = data.tobytes()
    if kind == 'thumbnail':
        data = with_thumbnail(data)
    assert jpeg_end(data + b'\r\n--next', 0) == len(data)
    # Every prefix is "not all there yet", never a wrong end.
    for cut in range(2, len(data) - 1, 7):
        assert jpeg_end(data[:cut], 0) is None
    assert frame_code(decode_image(data)) == 5
    assert jpeg_end(b'\xff\xd8\x00\x00garbage', 0) == -1


def test_truncated_jpeg_with_end_marker_fails_the_strict_decode():
    data = jpeg_bytes(coded_frame(7, 96, 128))
    for missing in (3, 20, 64, len(data) // 2):
        bad = data[:len(data) - missing] + b'\xff\xd9'
        with pytest.raises(ImageDecodeError, match='premature end|JPEG'):
            decode_image(bad)
    # What OpenCV makes of it: a picture, and no error to catch.
    bad = data[:len(data) - 64] + b'\xff\xd9'
    assert cv2.imdecode(np.frombuffer(bad, np.uint8), cv2.IMREAD_COLOR
                        ) is not None
    with pytest.raises(ImageDecodeError, match='not a decodable image'):
        decode_image(b'not an image at all')


class Trickle(io.RawIOBase):
    """A byte stream that hands out at most ``step`` bytes per read, like
    a socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self.data[self.pos:self.pos + min(self.step, len(buffer))]
        buffer[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


@pytest.mark.parametrize('step', [1, 13, 1 << 16])
def test_multipart_reader_parts_with_and_without_length(step):
    jpegs = [jpeg_bytes(coded_frame(i)) for i in range(4)]
    body = b''
    for i, data in enumerate(jpegs):
        body += b'--bnd\r\nContent-Type: image/jpeg\r\n'
        if i % 2:
            body += f'Content-Length: {len(data)}\r\n'.encode()
        body += b'\r\n' + data + b'\r\n'
    body += b'--bnd\r\nContent-Type: image/jpeg\r\n\r\n' + jpegs[0][:100]
    stream = io.BufferedReader(Trickle(body, step), buffer_size=max(step, 8))
    parts = list(MultipartReader(stream, b'bnd', threading.Event()))
    assert [p.complete for p in parts] == [True] * 4 + [False]
    assert [p.data for p in parts[:4]] == jpegs
