"""Video files: frame count, RGB order, timestamps, stride, time ranges,
VFR, truncated and corrupt files, the OpenCV fallback, the benchmark."""
import av
import numpy as np
import pytest
from driving_fixtures import frame_code, stripes_are_rgb, write_video

from perception.sources import SourceError, open_source
from perception_driving.sources import VideoSource, probe_fps


def codes(frames):
    return [frame_code(f.image) for f in frames]


def test_exact_count_rgb_order_and_timestamps(small_video):
    with open_source(small_video) as source:
        assert isinstance(source, VideoSource) and source.backend == 'pyav'
        frames = list(source)
    assert len(frames) == 30
    assert codes(frames) == list(range(30))
    assert [f.index for f in frames] == list(range(30))
    assert all(stripes_are_rgb(f.image) for f in frames)
    assert frames[0].image.dtype == np.uint8
    assert frames[0].image.shape == (96, 128, 3)
    times = [f.timestamp_ns for f in frames]
    assert times == [i * 100_000_000 for i in range(30)]
    assert all(f.meta['clock'] == 'pts' for f in frames)
    assert source.stats['fps'] == pytest.approx(10.0)
    assert source.stats['expected_frames'] == 30
    assert [e.kind for e in source.events] == ['eos']


def test_stride_and_time_range(small_video):
    with open_source(small_video, stride=4) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(0, 30, 4))
    assert codes(frames) == list(range(0, 30, 4))
    assert source.stats['fps'] == pytest.approx(10.0)
    with open_source(small_video, start_s=0.5, end_s=1.5, stride=2) as source:
        frames = list(source)
    assert [f.index for f in frames] == [5, 7, 9, 11, 13]
    assert codes(frames) == [5, 7, 9, 11, 13]
    assert frames[0].timestamp_ns == 500_000_000
    assert not [e for e in source.events if e.kind == 'dropped']


def test_variable_frame_rate_keeps_real_times(tmp_path):
    times = [0.0, 0.1, 0.15, 0.4, 0.45, 0.5, 1.0, 1.033]
    path = write_video(tmp_path / 'vfr.mkv', n=len(times), times_s=times)
    with open_source(path) as source:
        frames = list(source)
    assert codes(frames) == list(range(len(times)))
    assert [f.timestamp_ns for f in frames] == [round(t * 1e9) for t in times]
    # The mean rate of the timestamps, not the container's nominal 10 fps.
    assert source.stats['fps'] == pytest.approx(7 / 1.033, rel=1e-3)
    assert not [e for e in source.events if e.kind == 'dropped']


def test_fps_measured_not_taken_from_metadata(tmp_path):
    # Container says 25 fps, the frames are 40 ms... then 80 ms apart.
    times = [i * 0.08 for i in range(12)]
    path = write_video(tmp_path / 'lying.mkv', n=12, fps=25, times_s=times)
    assert probe_fps(str(path)) == pytest.approx(12.5)


def test_opencv_backend_matches_pyav(small_video):
    with open_source(small_video, backend='opencv', stride=3) as source:
        assert source.backend == 'opencv'
        frames = list(source)
    assert codes(frames) == list(range(0, 30, 3))
    assert all(stripes_are_rgb(f.image) for f in frames)
    assert [f.timestamp_ns for f in frames] == [
        i * 100_000_000 for i in range(0, 30, 3)]


def test_truncated_mp4_is_an_error_naming_the_file(small_video, tmp_path):
    cut = tmp_path / 'cut.mp4'
    data = small_video.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(SourceError, match=r'cut\.mp4.*truncated'):
        open_source(cut)
    empty = tmp_path / 'empty.mp4'
    empty.write_bytes(b'')
    with pytest.raises(SourceError, match='empty'):
        open_source(empty)


def test_truncated_mkv_reports_the_missing_frames(tmp_path):
    path = write_video(tmp_path / 'full.mkv', n=30, options={'g': '10'})
    data = path.read_bytes()
    cut = tmp_path / 'cut.mkv'
    cut.write_bytes(data[:len(data) * 2 // 3])
    with open_source(cut) as source:
        frames = list(source)
    assert 0 < len(frames) < 30
    assert codes(frames) == list(range(len(frames)))
    dropped = [e for e in source.events if e.kind == 'dropped']
    assert len(dropped) == 1 and 'cut.mkv' in dropped[0].detail
    assert dropped[0].count == 30 - len(frames)


def test_corrupt_packet_skipped_with_events_never_returned(tmp_path):
    path = write_video(tmp_path / 'ok.mkv', n=30, options={'g': '10'})
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0)
                   if p.size]
    data = bytearray(path.read_bytes())
    pos, size = packets[12]
    rng = np.random.default_rng(0)
    data[pos + 4:pos + size] = rng.integers(0, 256, size - 4,
                                            dtype=np.uint8).tobytes()
    bad = tmp_path / 'bad.mkv'
    bad.write_bytes(bytes(data))
    with open_source(bad) as source:
        frames = list(source)
    # Every frame returned is the picture it claims to be.
    assert [f.index for f in frames] == codes(frames)
    assert 12 not in codes(frames) and 20 in codes(frames)
    assert source.stats['corrupt'] >= 1
    assert all('bad.mkv' in e.detail for e in source.events
               if e.kind == 'corrupt')


def test_missing_file_and_bad_options(tmp_path, small_video):
    with pytest.raises(SourceError, match='nope.mp4.*does not exist'):
        open_source(tmp_path / 'nope.mp4')
    with pytest.raises(TypeError):
        open_source(small_video, frobnicate=True)
    with pytest.raises(ValueError, match='stride'):
        open_source(small_video, stride=0)
    with pytest.raises(ValueError, match='end_s'):
        open_source(small_video, start_s=2, end_s=1)
    not_video = tmp_path / 'text.mp4'
    not_video.write_text('hello, not a video')
    with pytest.raises(SourceError, match='text.mp4'):
        open_source(not_video)


def test_decode_benchmark_runs(small_video, capsys):
    from perception.benchmarks import all_benchmarks
    bench = all_benchmarks()['decode']
    import argparse
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(
        ['--video', str(small_video), '--repeats', '1'])) == 0
    out = capsys.readouterr().out
    assert 'ratio open_source / OpenCV' in out and '| 30 |' in out


@pytest.mark.parametrize('backend', ['pyav', 'opencv'])
def test_b_frames_come_out_in_presentation_order(tmp_path, backend):
    path = write_video(tmp_path / 'bframes.mp4', n=20, fps=25,
                       options={'preset': 'medium', 'bf': '3'})
    with open_source(path, backend=backend) as source:
        frames = list(source)
    assert codes(frames) == list(range(20))
    assert [f.timestamp_ns for f in frames] == [i * 40_000_000
                                                for i in range(20)]
    assert [e.kind for e in source.events] == ['eos']


def test_raw_stream_without_timestamps_uses_index_clock(tmp_path):
    path = write_video(tmp_path / 'raw.h264', n=6, fps=10)
    with open_source(path) as source:
        frames = list(source)
    assert codes(frames) == list(range(6))
    # The bitstream's own rate (10), not FFmpeg's raw-demuxer default (25).
    assert [f.timestamp_ns for f in frames] == [i * 100_000_000
                                                for i in range(6)]
    assert all(f.meta['clock'] == 'index' for f in frames)
    assert source.stats['index_fps_from'] == 'bitstream'
    with open_source(path, fps=5.0) as source:
        frames = list(source)
    assert frames[1].timestamp_ns == 200_000_000


def damage_middle(path, out, first, last):
    """Zero the bytes of packets ``first``..``last`` (exclusive) of a
    video: the demuxer loses those frames (and resyncs after them)."""
    with av.open(str(path)) as container:
        packets = [p.pos for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    data[packets[first]:packets[last]] = bytes(packets[last] - packets[first])
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize('first,last', [(25, 35), (12, 31), (41, 44)])
def test_frames_lost_in_the_middle_are_dropped_events(tmp_path, first, last):
    path = write_video(tmp_path / 'full.mkv', n=60, options={'g': '10'})
    bad = damage_middle(path, tmp_path / 'holes.mkv', first, last)
    with open_source(bad) as source:
        frames = list(source)
    got = codes(frames)
    # Indices and times stay those of the file, and fps is the stream's.
    assert [f.index for f in frames] == got
    assert [f.timestamp_ns for f in frames] == [c * 100_000_000 for c in got]
    assert source.stats['fps'] == pytest.approx(10.0)
    missing = sorted(set(range(60)) - set(got))
    assert missing, 'the damage must cost frames'
    lost = sum(e.count for e in source.events
               if e.kind in ('dropped', 'corrupt'))
    assert lost == len(missing)
    dropped = [e for e in source.events if e.kind == 'dropped']
    assert dropped and all('holes.mkv' in e.detail for e in dropped)
    for event in dropped:
        start, end = event.span_ns
        span = [c for c in missing if start <= c * 100_000_000 <= end]
        assert len(span) == event.count, (event, missing)


def test_truncated_file_dropped_event_has_the_time_span(tmp_path):
    path = write_video(tmp_path / 'full.mkv', n=30, options={'g': '10'})
    cut = tmp_path / 'cut.mkv'
    data = path.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with open_source(cut) as source:
        frames = list(source)
    dropped = [e for e in source.events if e.kind == 'dropped']
    assert len(dropped) == 1
    last = frames[-1].timestamp_ns
    assert dropped[0].span_ns == (last + 100_000_000, 2_900_000_000)
    assert dropped[0].count == 30 - len(frames)
    assert '2.90 s' in dropped[0].detail


@pytest.mark.parametrize('threads', [1, 8])
def test_no_decodable_frame_lost_at_the_end_of_a_cut_file(tmp_path, threads):
    """Frame-threaded decoding holds frames back; every cut point must
    still give every frame that decodes cleanly (reference: the same cut
    decoded frame by frame and drained)."""
    path = write_video(tmp_path / 'full.mkv', n=40, size=(320, 240),
                       options={'g': '10'})
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    for fraction in (0.3, 0.55, 0.8, 0.97):
        cut = tmp_path / 'cut.mkv'
        cut.write_bytes(data[:int(len(data) * fraction)]
                        + rng.integers(0, 256, 300, np.uint8).tobytes())
        with open_source(cut, threads=threads) as source:
            got = codes(source)
        with av.open(str(cut)) as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.thread_count = 'FRAME', threads
            clean = []
            for packet in container.demux(stream):
                try:
                    clean += [f for f in packet.decode() if not f.is_corrupt]
                except av.error.FFmpegError:
                    pass
        want = [frame_code(f.to_ndarray(format='rgb24')) for f in clean]
        # Every clean frame comes out (a damaged last one may be withheld).
        assert got == want[:len(got)] and len(got) >= len(want) - 1
        assert got == list(range(len(got)))


def test_gap_clock_tells_gaps_from_variable_rate():
    from perception_driving.sources.video_decode import GapClock

    def run(times_ms, nominal_ms=None):
        clock = GapClock(nominal_ms and nominal_ms * 1e6)
        return [clock.missing(int(t * 1e6)) for t in times_ms], clock

    lost, clock = run([0, 100, 200, 300, 900, 1000], 100)
    assert lost == [0, 0, 0, 0, 5, 0] and not clock.variable
    # A container that claims 25 fps for 12.5 fps frames: no made-up gaps.
    lost, _ = run([0, 80, 160, 240, 320], 40)
    assert lost == [0] * 5
    # Variable frame rate: pauses are not losses.
    lost, clock = run([0, 100, 150, 400, 450, 500, 1000, 1033], 100)
    assert lost == [0] * 8 and clock.variable
    lost, clock = run([0, 33, 66, 100, 133, 166, 200, 400])
    assert lost == [0] * 7 + [5] and clock.step_ns == pytest.approx(33e6, rel=0.05)
