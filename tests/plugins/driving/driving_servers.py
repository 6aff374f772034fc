"""Test servers on 127.0.0.1 for the driving-plugin stream tests: an MJPEG
HTTP server run in threads (stop, restart on the same port, mute, cut or
garbage parts) and the gst-rtsp-server subprocess (rtsp_server.py, run by
Debian's /usr/bin/python3). Every server is bounded in frames and time and
stops by itself.
"""
from __future__ import annotations

import http.server
import os
import socket
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from driving_fixtures import coded_frame


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    import cv2
    ok, data = cv2.imencode('.jpg', rgb[..., ::-1],
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


class MjpegServer:
    """multipart/x-mixed-replace MJPEG over HTTP on 127.0.0.1.

    Sends coded frames numbered from ``next_number`` at ``fps``; bounded:
    each connection sends at most ``max_frames`` frames and lives at most
    ``max_seconds``. ``stop()`` closes the listener and every connection,
    ``start()`` listens again on the same port (numbers go on), ``mute()``
    keeps connections open but stops sending.
    """

    boundary = 'frameboundary'

    def __init__(self, fps: float = 30.0, max_frames: int = 300,
                 max_seconds: float = 20.0, content_length: bool = True,
                 size: tuple[int, int] = (128, 96),
                 cut_after: int | None = None, garbage_at: int | None = None,
                 content_type: str | None = None,
                 truncated_at: int | None = None,
                 hold_after: int | None = None) -> None:
        self.fps, self.max_frames = fps, max_frames
        self.max_seconds = max_seconds
        self.content_length, self.size = content_length, size
        # cut_after: send that many frames, then half a JPEG, then hang up.
        # garbage_at: the part with that number is not an image.
        self.cut_after, self.garbage_at = cut_after, garbage_at
        # truncated_at: the part with that number is its JPEG less the last
        # 64 bytes with an end marker (FFD9) appended: OpenCV decodes it
        # with a warning only. hold_after: send that many frames, then keep
        # the connection open without sending anything.
        self.truncated_at, self.hold_after = truncated_at, hold_after
        self.content_type = content_type
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}/stream.mjpg'
        self.next_number = 0
        self.sent: list[int] = []
        self.muted = threading.Event()
        self._server = None
        self._thread = None
        self._lock = threading.Lock()

    def _handler(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header('Content-Type', owner.content_type or
                                 'multipart/x-mixed-replace; '
                                 f'boundary={owner.boundary}')
                self.end_headers()
                if owner.content_type:
                    self.wfile.write(b'<html>not a stream</html>')
                    return
                deadline = time.monotonic() + owner.max_seconds
                sent = 0
                while (sent < owner.max_frames and time.monotonic() < deadline
                       and not self.server.stopping.is_set()):
                    if owner.muted.is_set() or sent == owner.hold_after:
                        time.sleep(0.02)
                        continue
                    with owner._lock:
                        number = owner.next_number
                        owner.next_number += 1
                    data = jpeg_bytes(coded_frame(number, owner.size[1],
                                                  owner.size[0]))
                    cut = (owner.cut_after is not None
                           and sent >= owner.cut_after)
                    if cut:
                        data = data[:len(data) // 2]
                    elif number == owner.garbage_at:
                        data = b'this part is not an image' * 10
                    elif number == owner.truncated_at:
                        data = data[:len(data) - 64] + b'\xff\xd9'
                    head = (f'--{owner.boundary}\r\n'
                            'Content-Type: image/jpeg\r\n')
                    if owner.content_length:
                        head += f'Content-Length: {len(data)}\r\n'
                    if cut:
                        head = (f'--{owner.boundary}\r\nContent-Type: '
                                'image/jpeg\r\n')
                        if owner.content_length:
                            head += f'Content-Length: {2 * len(data)}\r\n'
                    try:
                        self.wfile.write(head.encode() + b'\r\n' + data +
                                         (b'' if cut else b'\r\n'))
                        self.wfile.flush()
                    except OSError:
                        return
                    if cut:
                        return
                    owner.sent.append(number)
                    sent += 1
                    time.sleep(1.0 / owner.fps)

        return Handler

    def start(self) -> 'MjpegServer':
        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            block_on_close = False

        self._server = Server(('127.0.0.1', self.port), self._handler())
        self._server.stopping = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def mute(self) -> None:
        self.muted.set()


@pytest.fixture
def mjpeg_server():
    servers = []

    def make(**kwargs) -> MjpegServer:
        server = MjpegServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


RTSP_SCRIPT = Path(__file__).with_name('rtsp_server.py')
SYSTEM_PYTHON = '/usr/bin/python3'


def rtsp_unavailable_reason() -> str | None:
    """Why an RTSP server cannot run here, or None."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f'{SYSTEM_PYTHON} (Debian python3) is missing'
    probe = subprocess.run(
        [SYSTEM_PYTHON, str(RTSP_SCRIPT), '--check'], capture_output=True,
        text=True, timeout=30)
    if probe.returncode != 0:
        return ('gst-rtsp-server is not usable from /usr/bin/python3 (run '
                '`make test-deps` as root: python3-gi gir1.2-gst-rtsp-server-'
                f'1.0 gstreamer1.0-plugins-ugly): '
                f'{probe.stderr.strip()[-300:]}')
    return None


class RtspServer:
    """The loopback RTSP server subprocess (SMPTE bars, H.264, 320x240 at
    15 fps); ``stop()`` and ``start()`` again on the same port. Each run
    exits by itself after ``seconds``."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.port, self.seconds = free_port(), seconds
        self.url = f'rtsp://127.0.0.1:{self.port}/test'
        self.proc = None

    def start(self) -> 'RtspServer':
        import select
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(RTSP_SCRIPT), '--port', str(self.port),
             '--seconds', str(self.seconds)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ''
        if 'ready' not in line:
            self.stop()
            pytest.skip('RTSP server did not start within 20 s: '
                        f'{self.proc.stderr.read()[-300:]}')
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def rtsp_server_process():
    """A started :class:`RtspServer`; skips with the reason when
    gst-rtsp-server cannot run here."""
    reason = rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = RtspServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rtsp_server(rtsp_server_process):
    """The URL of a loopback RTSP server (see :class:`RtspServer`)."""
    return rtsp_server_process.url
