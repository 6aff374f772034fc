"""``perception benchmark decode``: video decoding to RGB arrays through
``open_source`` against a plain ``cv2.VideoCapture`` + ``cvtColor`` loop and
a raw PyAV loop (``to_ndarray(format='rgb24')``, frame-threaded as
``open_source`` decodes).

All decode the same file (``--video PATH``, else a 1920x1080 H.264 clip
written here with PyAV, so nothing downloads) to RGB uint8 arrays,
interleaved A/B/C/A/B/C in one run; the table gives frames/s, CPU seconds
per run and the ratios (ours / OpenCV, target >= 1.0; ours / raw PyAV,
target >= 0.9).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from perception.benchmarks import Benchmark, format_table, interleave
from perception.registry import BENCHMARKS
from perception.sources import SourceError
from perception.study_domains import StudyDomain, register_study_domain


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


def decode_pyav(path: str) -> int:
    """The raw PyAV loop: frame-threaded decode, ``to_ndarray('rgb24')``."""
    import av
    n = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        for frame in container.decode(stream):
            n += frame.to_ndarray(format='rgb24').shape[0] > 0
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
    help = ('video -> RGB arrays: open_source vs cv2.VideoCapture + cvtColor '
            'and raw PyAV (frames/s, interleaved; --video PATH)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--video', help='decode this file instead of a '
                            'generated 1920x1080 H.264 clip')
        parser.add_argument('--frames', type=int, default=120,
                            help='frames of the generated clip')
        parser.add_argument('--repeats', type=int, default=5)

    def run(self, args: argparse.Namespace) -> int:
        decoders = {'open_source (PyAV)': decode_open_source,
                    "raw PyAV to_ndarray('rgb24')": decode_pyav,
                    'cv2.VideoCapture + cvtColor': decode_opencv}
        with tempfile.TemporaryDirectory() as tmp:
            path = args.video or write_test_video(
                os.path.join(tmp, 'bench_1080p.mp4'), args.frames)
            if not os.path.isfile(path):
                raise SourceError(f'--video {path}: no such file; give the '
                                  'path of a video file')
            counts = {name: fn(path) for name, fn in decoders.items()}
            if len(set(counts.values())) != 1:
                print(f'frame counts differ: {counts}')
                return 1
            n = next(iter(counts.values()))
            cpu = {name: [] for name in decoders}

            def timed(name, fn):
                def run():
                    start = time.process_time()
                    fn(path)
                    cpu[name].append(time.process_time() - start)
                return run
            timings = interleave({name: timed(name, fn)
                                  for name, fn in decoders.items()},
                                 repeats=args.repeats, warmup=1, desc='decode')
        rows = [[t.name, n, n / t.median, n / t.best,
                 statistics.median(cpu[t.name][-args.repeats:])]
                for t in timings.values()]
        print(f'{path if args.video else "generated 1920x1080 H.264 clip"}: '
              f'{n} frames, {args.repeats} interleaved repeats after 1 '
              'warm-up')
        print(format_table(['decoder', 'frames', 'median frames/s',
                            'best frames/s', 'median CPU s'], rows))
        ours, raw, cv = timings.values()
        print(f'\nratio open_source / OpenCV (median): '
              f'{cv.median / ours.median:.3f}x (best: '
              f'{cv.best / ours.best:.3f}x); target >= 1.0x')
        print(f'ratio open_source / raw PyAV (median): '
              f'{raw.median / ours.median:.3f}x (best: '
              f'{raw.best / ours.best:.3f}x); target >= 0.9x')
        return 0


def _drive_commands() -> tuple[tuple[str, ...], ...]:
    """The detection study's drives (docs/benchmarks.md): eight for
    training, three with unseen seeds for testing."""
    train = [(1, 'day', 'clear'), (2, 'day', 'rain'), (3, 'dusk', 'clear'),
             (4, 'night', 'clear'), (5, 'day', 'fog'), (6, 'dusk', 'rain'),
             (7, 'day', 'clear'), (8, 'night', 'rain')]
    test = [(101, 'day', 'clear'), (102, 'dusk', 'rain'),
            (103, 'night', 'fog')]
    return tuple(
        ('synth-drive', f'data/det/{split}_s{seed}', '--seed', str(seed),
         '--frames', str(frames), '--cameras', '1', '--lighting', light,
         '--weather', weather, '--formats', 'kitti', 'bdd100k')
        for split, frames, drives in (('train', 100, train),
                                      ('test', 60, test))
        for seed, light, weather in drives)


register_study_domain(StudyDomain(
    name='driving',
    pretrain_config='configs/pretrain/'
                    'mae_vit-tiny-p16_1xb32-20min_synth-drives-256x512.py',
    scratch_config='configs/detection/'
                   'tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py',
    pretrained_config='configs/detection/'
                      'tal_vit-tiny-p16-mae_simplefpn_1000it-45min_synth-drives.py',
    fraction_kind='images', fractions=(0.01, 0.1, 1.0), focus=0.1,
    metrics=(('coco/AP50', 'AP50'), ('coco/AP', 'AP')),
    data_commands=_drive_commands(),
    data_check=('data/det/train_s8/kitti/training',
                'data/det/test_s103/kitti/training',
                'data/det/train_s1/images/front'),
    note=('Generated drives: 800 labelled 640x360 frames of 8 drives for '
          'training (MAE pretraining sees all of them without labels), 180 '
          'frames of 3 unseen drives for testing; COCO AP at 512x288.')))
