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

    from perception_driving.sources import streams
    release = threading.Event()
    real_decode = streams.decode_image

    def stuck(*args, **kwargs):
        release.wait(30)  # a decoder that never returns (until teardown)
        return real_decode(*args, **kwargs)

    server = mjpeg_server(fps=40)
    monkeypatch.setattr(streams, 'decode_image', stuck)
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
    # The garbage part and the part cut short by the hang-up: both counted.
    assert kinds.count('corrupt') == 2 and kinds[-1] == 'eos'
    cut = [e for e in source.events if e.kind == 'corrupt'][-1]
    assert 'cut short' in cut.detail


@pytest.mark.parametrize('content_length', [True, False])
def test_truncated_jpeg_with_end_marker_is_corrupt(mjpeg_server,
                                                   content_length):
    # Half a JPEG with FFD9 appended: starts and ends like a JPEG, and
    # OpenCV decodes it (grey bottom) with only a warning on stderr.
    server = mjpeg_server(fps=40, max_frames=7, truncated_at=3,
                          content_length=content_length)
    with open_source(server.url, buffering='fifo', reconnect=False,
                     **FAST) as source:
        frames = list(source)
    assert [frame_code(f.image) for f in frames] == [0, 1, 2, 4, 5, 6]
    assert_real_pictures(frames)
    corrupt = [e for e in source.events if e.kind == 'corrupt']
    assert len(corrupt) == 1 and 'premature end' in corrupt[0].detail


def test_parts_without_content_length_arrive_when_complete(mjpeg_server):
    # The server sends 3 frames, then nothing on an open connection: the
    # third frame must not wait for a boundary that never comes.
    server = mjpeg_server(fps=40, content_length=False, hold_after=3)
    with open_source(server.url, buffering='fifo', timeout_s=3,
                     **dict(FAST, read_timeout_s=10)) as source:
        assert [frame_code(f.image) for f in take(source, 3)] == [0, 1, 2]
    # ...and the last part before the server hangs up is a frame too.
    server = mjpeg_server(fps=40, content_length=False, max_frames=4)
    with open_source(server.url, buffering='fifo', reconnect=False,
                     **FAST) as source:
        frames = list(source)
    assert [frame_code(f.image) for f in frames] == [0, 1, 2, 3]
    assert [e.kind for e in source.events] == ['stall', 'eos']


def test_stalled_but_connected_stream_says_so(mjpeg_server):
    server = mjpeg_server(fps=40, hold_after=2)
    source = open_source(server.url, timeout_s=1.0, backoff_s=0.02,
                         read_timeout_s=30)
    with source:
        assert len(take(source, 2)) == 2
        with pytest.raises(SourceTimeout) as info:
            take(source, 1)
    message = str(info.value)
    assert 'no frame within 1.0 s' in message
    assert 'connected' in message and 'stalled' in message
    assert 'not connected yet' not in message


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
