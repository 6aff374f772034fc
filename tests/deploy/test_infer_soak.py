"""Soak (slow): `perception infer` on a loopback MJPEG stream at 30 fps
whose server restarts every minute, for ``PERCEPTION_SOAK_S`` seconds
(default 600; e.g. ``PERCEPTION_SOAK_S=90`` for a short run):

* memory stays flat: the process's RSS after warm-up grows less than
  ``PERCEPTION_SOAK_RSS_MB`` (default 30 MB) to the end;
* no frame is delivered twice: every served frame carries its number
  (binary blocks, read back from the annotated MP4), and the numbers of the
  delivered frames strictly increase, as do their arrival times;
* every gap in the numbers is an event: a ``stall``/``reconnect``/
  ``dropped``/``corrupt`` event lies between the frames around it.

Run: ``PERCEPTION_SOAK_S=600 .venv/bin/python -m pytest -q -s -m slow
tests/deploy/test_infer_soak.py`` (``-s`` prints the figures).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip('onnxruntime')
av = pytest.importorskip('av', reason='MP4s need PyAV (driving extra)')
pytest.importorskip('perception_driving', reason='the stream source lives '
                    'in the driving plugin')
from driving_fixtures import CODE_BITS, frame_code  # noqa: E402
from driving_servers import MjpegServer  # noqa: E402

PERCEPTION = str(Path(sys.executable).with_name('perception'))
SOAK_S = float(os.environ.get('PERCEPTION_SOAK_S', '600'))
RESTART_S = float(os.environ.get('PERCEPTION_SOAK_RESTART_S', '60'))
RSS_BOUND_MB = float(os.environ.get('PERCEPTION_SOAK_RSS_MB', '30'))
GAP_EVENTS = {'stall', 'reconnect', 'dropped', 'corrupt'}


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _codes(path: Path) -> list[int]:
    """The frame numbers drawn into the MP4's frames, unwrapped (the
    blocks hold the number modulo 2**CODE_BITS; a gap that long would be
    8 s of stream)."""
    with av.open(str(path)) as container:
        raw = [frame_code(f.to_ndarray(format='rgb24'))
               for f in container.decode(video=0)]
    modulo, numbers = 1 << CODE_BITS, []
    for code in raw:
        if not numbers:
            numbers.append(code)
            continue
        step = (code - numbers[-1]) % modulo
        numbers.append(numbers[-1] + step)  # step 0: delivered twice
    return numbers


@pytest.mark.slow
@pytest.mark.timeout(SOAK_S + 600)  # pytest-timeout's 300 s is too short
def test_soak_mjpeg_with_restarts(camera_bundle, tmp_path):
    bundle, _, _ = camera_bundle
    server = MjpegServer(fps=30, max_frames=10 ** 9,
                         max_seconds=SOAK_S + 3600).start()
    out = tmp_path / 'out'
    proc = subprocess.Popen(
        [PERCEPTION, 'infer', str(bundle), server.url, '--out', str(out),
         '--source-option', 'timeout_s=30', '--score-thr', '1.0',
         '--threads', '1', '--quiet'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []  # (seconds, RSS MB)
    restarts = 0
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(2.0):
            rss = _rss_mb(proc.pid)
            if rss is not None:
                samples.append((time.monotonic() - t0, rss))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        start = time.monotonic()
        next_restart = start + RESTART_S
        while time.monotonic() - start < SOAK_S:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            if time.monotonic() >= next_restart:
                server.stop()  # every connection drops
                time.sleep(0.5)
                server.start()
                restarts += 1
                next_restart += RESTART_S
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        server.stop()
    sampler.join(5)
    assert proc.returncode == 0, stderr[-2000:]
    data = json.loads((out / 'detections.json').read_text())
    summary, images, events = data['summary'], data['images'], data['events']
    numbers = _codes(out / 'cam0.mp4')
    kinds = {k: sum(e['count'] for e in events if e['kind'] == k)
             for k in sorted({e['kind'] for e in events})}

    # Memory: flat after warm-up (a third of the run, at most 2 minutes).
    warm = min(120.0, SOAK_S / 3)
    after = [rss for t, rss in samples if t >= warm]
    assert len(after) >= 3, samples
    figures = dict(start=samples[0][1], warm=after[0], min=min(after),
                   max=max(after), end=after[-1])
    growth = max(after) - after[0]

    # Frame identity: no number twice, arrival times strictly increasing.
    assert len(numbers) == len(images) == summary['frames'] \
        == summary['videos']['cam0.mp4']
    steps = [b - a for a, b in zip(numbers, numbers[1:])]
    duplicates = sum(1 for s in steps if s == 0)
    times = [im['timestamp_ns'] for im in images]
    assert [im['frame_index'] for im in images] == sorted(
        {im['frame_index'] for im in images})
    # Every gap lies between two frames with a gap event in between (a
    # 'dropped' event is emitted when the frame after the gap is taken,
    # before the one after it arrives).
    gap_events = sorted(e['time'] for e in events if e['kind'] in GAP_EVENTS)
    unexplained = []
    for k, step in enumerate(steps):
        if step <= 1:
            continue
        lo = times[k] / 1e9
        hi = times[k + 2] / 1e9 if k + 2 < len(times) else float('inf')
        if not any(lo < t < hi for t in gap_events):
            unexplained.append((numbers[k], numbers[k + 1]))
    missing = sum(s - 1 for s in steps if s > 1)
    print(f'\nsoak {SOAK_S:.0f} s, server restarts every {RESTART_S:.0f} s: '
          f'{restarts} restarts; served {len(server.sent)} frames, '
          f'delivered {len(numbers)} (numbers {numbers[0]}..{numbers[-1]}, '
          f'{summary["fps"]} frames/s), '
          f'{missing} missing in {sum(1 for s in steps if s > 1)} gaps, '
          f'{duplicates} delivered twice, {len(unexplained)} gaps without an '
          f'event; events {kinds}; RSS MB '
          + ', '.join(f'{k} {v:.1f}' for k, v in figures.items())
          + f' (growth after {warm:.0f} s warm-up: {growth:.1f} MB, '
          f'{len(samples)} samples)')
    assert duplicates == 0 and all(s > 0 for s in steps), steps
    assert all(b > a for a, b in zip(times, times[1:]))
    assert not unexplained, (unexplained[:10], events[:20])
    assert kinds.get('reconnect', 0) >= restarts > 0 or SOAK_S < RESTART_S
    assert len(numbers) >= 0.5 * len(server.sent)
    assert growth < RSS_BOUND_MB, (figures, samples)
