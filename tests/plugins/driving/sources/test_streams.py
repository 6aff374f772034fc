"""Live streams from servers the tests run on 127.0.0.1: MJPEG over HTTP
(restart mid-read, silence, buffering policies, broken parts, refused
connections) and RTSP (gst-rtsp-server subprocess)."""
import time

import numpy as np
import pytest
from driving_fixtures import frame_code, stripes_are_rgb

from perception.sources import SourceError, SourceTimeout, open_source
from perception_driving.sources import StreamSource

FAST = dict(backoff_s=0.02, backoff_max_s=0.2, read_timeout_s=1.0)


def take(source, n):
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == n:
            break
    return frames


def assert_real_pictures(frames):
    """No black, grey or repeated frames: every frame shows its stripes and
    a new number."""
    numbers = [frame_code(f.image) for f in frames]
    assert all(stripes_are_rgb(f.image) for f in frames)
    assert all(b > a for a, b in zip(numbers, numbers[1:])), numbers
    times = [f.timestamp_ns for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    return numbers


def test_server_restart_mid_read_reconnects_and_reports_gap(mjpeg_server):
    server = mjpeg_server(fps=40)
    with open_source(server.url, buffering='fifo', timeout_s=10,
                     **FAST) as source:
        assert isinstance(source, StreamSource)
        before = take(source, 12)
        server.stop()
        time.sleep(0.5)
        server.start()
        after = take(source, 12)
    frames = before + after
    numbers = assert_real_pictures(frames)
    assert numbers[:12] == list(range(12))
    assert all(f.meta['clock'] == 'arrival' for f in frames)
    kinds = [e.kind for e in source.events]
    assert kinds.count('stall') == 1 and kinds.count('reconnect') == 1
    assert source.stats['reconnect'] == 1
    reconnect = next(e for e in source.events if e.kind == 'reconnect')
    assert server.url in reconnect.detail and 'no frames for' in reconnect.detail
    first_after = next(f for f in after if f.meta.get('after_reconnect'))
    assert first_after.meta['gap_s'] >= 0.4


def test_server_that_stops_sending_raises_source_timeout(mjpeg_server):
    server = mjpeg_server(fps=40)
    source = open_source(server.url, timeout_s=1.5, backoff_s=0.02,
                         read_timeout_s=0.3)
    with source:
        assert len(take(source, 3)) == 3
        server.mute()
        with pytest.raises(SourceTimeout, match=server.url.replace(
                '.', r'\.')) as info:
            take(source, 10**6)
    assert 'no frame within 1.5 s' in str(info.value)
    assert source.stats['stall'] >= 1
    assert not source._worker.is_alive()


def test_latest_keeps_newest_and_counts_drops(mjpeg_server):
    server = mjpeg_server(fps=50)
    with open_source(server.url, buffering='latest', **FAST) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            time.sleep(0.1)  # a slow consumer
            if len(frames) == 6:
                break
    assert_real_pictures(frames)
    dropped = sum(e.count for e in source.events if e.kind == 'dropped')
    assert dropped > 0
    # Every frame between two yielded ones was dropped and counted.
    assert dropped == frames[-1].index + 1 - len(frames)
    assert source.stats['dropped'] == dropped


def test_fifo_bounded_queue_drops_newest(mjpeg_server):
    server = mjpeg_server(fps=50)
    with open_source(server.url, buffering='fifo', queue_size=3,
                     **FAST) as source:
        first = take(source, 1)
        time.sleep(0.5)
        rest = take(source, 5)
    numbers = assert_real_pictures(first + rest)
    assert numbers[:4] == list(range(4))  # the queued ones, in order
    assert source.stats['dropped'] > 0


def test_stuck_decoder_cannot_hang_the_caller(mjpeg_server, monkeypatch):
    import threading

    import cv2
    release = threading.Event()
    real_imdecode = cv2.imdecode

    def stuck(*args, **kwargs):
        release.wait(30)  # a decoder that never returns (until teardown)
        return real_imdecode(*args, **kwargs)

    server = mjpeg_server(fps=40)
    monkeypatch.setattr(cv2, 'imdecode', stuck)
    source = open_source(server.url, timeout_s=0.5, **FAST)
    try:
        with pytest.raises(SourceTimeout, match='no frame within 0.5 s'):
            take(source, 1)
    finally:
        release.set()
        source.close()


def test_parts_without_content_length(mjpeg_server):
    server = mjpeg_server(fps=40, content_length=False)
    with open_source(server.url, buffering='fifo', **FAST) as source:
        numbers = assert_real_pictures(take(source, 8))
    assert numbers == list(range(8))


@pytest.mark.parametrize('content_length', [True, False])
def test_cut_and_garbage_parts_never_become_frames(mjpeg_server,
                                                   content_length):
    server = mjpeg_server(fps=40, cut_after=6, garbage_at=2,
                          content_length=content_length)
    with open_source(server.url, buffering='fifo', reconnect=False,
                     **FAST) as source:
        frames = list(source)
    assert [frame_code(f.image) for f in frames] == [0, 1, 3, 4, 5]
    assert_real_pictures(frames)
    kinds = [e.kind for e in source.events]
    assert kinds.count('corrupt') == 1 and kinds[-1] == 'eos'


def test_refused_connection_gives_up_or_times_out(mjpeg_server):
    server = mjpeg_server()
    server.stop()
    with open_source(server.url, max_reconnects=3, backoff_s=0.01,
                     timeout_s=20) as source:
        with pytest.raises(SourceError, match='gave up after 3 reconnect'):
            list(source)
    with open_source(server.url, backoff_s=0.01, backoff_max_s=0.05,
                     timeout_s=0.5) as source:
        with pytest.raises(SourceTimeout, match='refused'):
            list(source)
    assert source.stats['stall'] == 1  # one stall, not one per attempt


def test_not_a_stream_and_bad_options(mjpeg_server):
    server = mjpeg_server(content_type='text/html')
    with pytest.raises(SourceError, match="'text/html' is not an MJPEG"):
        list(open_source(server.url, timeout_s=10))
    with pytest.raises(ValueError, match='buffering'):
        open_source(server.url, buffering='newest')


def test_rtsp_stream_from_gst_rtsp_server(rtsp_server):
    with open_source(rtsp_server, buffering='fifo', timeout_s=20) as source:
        frames = take(source, 8)
    assert len(frames) == 8
    image = frames[-1].image
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    # SMPTE bars, left to right: white, yellow, cyan, green, magenta, red,
    # blue; read the red and blue bars to check the channel order.
    bars = [image[60, int(320 * (k + 0.5) / 7)].astype(int)
            for k in range(7)]
    assert bars[5][0] > 180 and bars[5][2] < 80  # red
    assert bars[6][2] > 180 and bars[6][0] < 80  # blue
    assert all(f.meta['clock'] == 'arrival' for f in frames)
    # Stream time rides along where the RTP stream gives it.
    pts = [f.meta['pts_ns'] for f in frames if 'pts_ns' in f.meta]
    assert len(pts) >= 4
    assert all(b > a for a, b in zip(pts, pts[1:]))


@pytest.mark.slow
def test_rtsp_server_restart_reconnects(rtsp_server_process):
    server = rtsp_server_process
    with open_source(server.url, buffering='fifo', timeout_s=30,
                     backoff_s=0.2, backoff_max_s=1.0,
                     read_timeout_s=1.0) as source:
        frames = take(source, 5)
        server.stop()
        server.start()
        # Frames queued before the stop come first, then the new session.
        for frame in source:
            frames.append(frame)
            if frame.meta.get('after_reconnect') or len(frames) > 300:
                break
        frames += take(source, 3)
    times = [f.timestamp_ns for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert all(f.image.mean() > 30 for f in frames)  # bars, never black
    assert source.stats['stall'] >= 1 and source.stats['reconnect'] == 1
    first_new = next(f for f in frames if f.meta.get('after_reconnect'))
    assert first_new.meta['gap_s'] > 0
