"""``perception benchmark decode``: H.264 decoding to RGB arrays through
``open_source`` against a plain ``cv2.VideoCapture`` + ``cvtColor`` loop.

Both decode the same 1920x1080 H.264 file (written here with PyAV, so
nothing downloads) to RGB uint8 arrays, interleaved A/B/A/B in one run;
the table gives frames/s and the ratio (ours / OpenCV, target >= 1.0).
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from perception.benchmarks import Benchmark, format_table, interleave
from perception.registry import BENCHMARKS


def write_test_video(path: str, frames: int = 120, size=(1920, 1080),
                     fps: int = 30) -> str:
    """A moving-gradient H.264 video (x264 'veryfast', yuv420p, GOP 30)."""
    import av
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.options = {'preset': 'veryfast', 'g': '30'}
        for i in range(frames):
            rgb = np.stack([(xs + 8 * i) % 256, (ys + 4 * i) % 256,
                            ((xs + ys) // 4 + 16 * i) % 256], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), 'rgb24')
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_open_source(path: str) -> int:
    from perception.sources import open_source
    n = 0
    with open_source(path) as source:
        for frame in source:
            n += frame.image.shape[0] > 0
    return n


def decode_opencv(path: str) -> int:
    import cv2
    capture = cv2.VideoCapture(path)
    n = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += rgb.shape[0] > 0
    capture.release()
    return n


@BENCHMARKS.register_module(name='decode')
class DecodeBenchmark(Benchmark):
    name = 'decode'
    help = ('1920x1080 H.264 -> RGB arrays: open_source vs cv2.VideoCapture'
            ' + cvtColor (frames/s, interleaved)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--video', help='decode this file instead of a '
                            'generated 1920x1080 H.264 clip')
        parser.add_argument('--frames', type=int, default=120,
                            help='frames of the generated clip')
        parser.add_argument('--repeats', type=int, default=5)

    def run(self, args: argparse.Namespace) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.video or write_test_video(
                os.path.join(tmp, 'bench_1080p.mp4'), args.frames)
            counts = {'open_source (PyAV)': decode_open_source(path),
                      'cv2.VideoCapture + cvtColor': decode_opencv(path)}
            if len(set(counts.values())) != 1:
                print(f'frame counts differ: {counts}')
                return 1
            n = next(iter(counts.values()))
            timings = interleave({
                'open_source (PyAV)': lambda: decode_open_source(path),
                'cv2.VideoCapture + cvtColor': lambda: decode_opencv(path)},
                repeats=args.repeats, warmup=1)
        ours, base = timings.values()
        rows = [[t.name, n, n / t.median, n / t.best]
                for t in timings.values()]
        print(format_table(['decoder', 'frames', 'median frames/s',
                            'best frames/s'], rows))
        print(f'\nratio open_source / OpenCV (median): '
              f'{base.median / ours.median:.3f}x (best: '
              f'{base.best / ours.best:.3f}x); target >= 1.0x')
        return 0
