"""``perception benchmark latency MODEL --backend torch|onnxruntime``:
latency percentiles (p50/p90/p99) and throughput of a detector, separately
for model compute (the backend on a preprocessed batch) and end to end
(decode a JPEG frame, preprocess, infer, post-process into source pixels),
after warm-up. ``--baseline CKPT`` times the PyTorch eager model of that
checkpoint in the same run (alternating runs, so drift hits both) and
prints the ratio; ``--json FILE`` writes every figure.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from typing import Callable

import numpy as np

from perception.benchmarks import Benchmark, format_table, interleave
from perception.registry import BENCHMARKS

__all__ = ['LatencyBenchmark', 'percentiles', 'parse_size']


def parse_size(text: str) -> tuple[int, int]:
    """``'384x640'`` -> (384, 640) (height x width)."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--size {text!r}: write HEIGHTxWIDTH, e.g. 384x640') from None
    return height, width


def percentiles(seconds: list[float], batch: int) -> dict:
    """p50/p90/p99/mean in ms and images/s of per-batch times."""
    ordered = sorted(seconds)

    def pick(q: float) -> float:
        return ordered[min(int(round(q * (len(ordered) - 1))), len(ordered) - 1)]
    mean = statistics.fmean(ordered)
    return dict(p50_ms=pick(0.5) * 1e3, p90_ms=pick(0.9) * 1e3,
                p99_ms=pick(0.99) * 1e3, mean_ms=mean * 1e3,
                images_per_s=batch / mean, runs=len(ordered))


def _at_size(predictor, height: int, width: int):
    """The predictor with its PretrainedCfg resizing to exactly
    height x width (the frames are made that size, so no resize runs)."""
    cfg = predictor.pretrained_cfg
    sized = dataclasses.replace(cfg, input_size=(cfg.in_chans, height, width))
    predictor.backend.pretrained_cfg = sized
    return predictor


def _frame_maker(predictor, height: int, width: int) -> Callable[[], object]:
    """A callable giving one decoded source frame: a JPEG decoded (camera
    models) or a float32 HU slice / slab (CT models)."""
    rng = np.random.default_rng(0)
    cfg = predictor.pretrained_cfg
    if cfg.windows:
        channels = max(len(cfg.slice_offsets), 1)
        hu = rng.uniform(-1000, 400, (height, width, channels)).astype(
            np.float32)
        return lambda: hu.copy()
    import cv2
    smooth = cv2.resize(rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3),
                                     dtype=np.uint8), (width, height))
    ok, jpeg = cv2.imencode('.jpg', smooth, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    data = jpeg.tobytes()

    def decode():
        buffer = np.frombuffer(data, np.uint8)
        return cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR),
                            cv2.COLOR_BGR2RGB)
    return decode


def _contestant(predictor, batch: int, height: int, width: int
                ) -> dict[str, Callable[[], object]]:
    """{'model': compute only, 'end_to_end': decode..post-process}."""
    make = _frame_maker(predictor, height, width)
    slab = bool(predictor.pretrained_cfg.slice_offsets)
    frames = [make() for _ in range(batch)]
    prepared = [predictor.prepare(f[..., 0] if slab else f,
                                  f if slab else None) for f in frames]
    inputs = predictor.collate([t for t, _ in prepared],
                               [s for _, s in prepared])

    def end_to_end():
        decoded = [make() for _ in range(batch)]
        return predictor.predict([d[..., 0] if slab else d for d in decoded],
                                 decoded if slab else None)
    return {'model': lambda: predictor.backend.run(inputs),
            'end_to_end': end_to_end}


@BENCHMARKS.register_module(name='latency')
class LatencyBenchmark(Benchmark):
    name = 'latency'
    help = ('latency p50/p90/p99 and throughput of a detector on a backend '
            '(model compute and end to end), optionally vs PyTorch eager')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('model', help='checkpoint / work dir (torch), '
                            'bundle folder or .onnx (onnxruntime)')
        parser.add_argument('--backend', help="a BACKENDS name, 'torch' or "
                            "'onnxruntime' (default: from MODEL)")
        parser.add_argument('--baseline', metavar='CKPT',
                            help='also time this checkpoint in PyTorch eager '
                            'in the same run and print the ratio')
        parser.add_argument('--batch', type=int, default=1)
        parser.add_argument('--size', type=parse_size, metavar='HxW',
                            help="input size (default: the model's)")
        parser.add_argument('--repeats', type=int, default=50)
        parser.add_argument('--warmup', type=int, default=5)
        parser.add_argument('--threads', type=int, default=0,
                            help='intra-op threads (0: the backend default)')
        parser.add_argument('--json', metavar='FILE',
                            help='write the figures as JSON')

    def run(self, args: argparse.Namespace) -> int:
        from perception.deploy.predictor import load_predictor
        from perception.errors import is_user_error
        try:
            predictors = {'model': load_predictor(args.model, args.backend,
                                                  threads=args.threads)}
            if args.baseline:
                predictors['baseline'] = load_predictor(
                    args.baseline, 'torch', threads=args.threads)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            print(f'perception benchmark latency: error: {exc}')
            return 2
        main = predictors['model']
        size = args.size or (tuple(main.pretrained_cfg.input_size[1:])
                             if main.pretrained_cfg.input_size else (384, 640))
        height, width = size
        timed = {}
        for role, predictor in predictors.items():
            parts = _contestant(_at_size(predictor, height, width), args.batch,
                                height, width)
            for part, fn in parts.items():
                timed[f'{role}/{part}'] = fn
        timings = interleave(timed, repeats=args.repeats, warmup=args.warmup)
        report = dict(model=args.model, baseline=args.baseline,
                      batch=args.batch, size=[height, width],
                      backends={r: p.backend.describe()
                                for r, p in predictors.items()},
                      results={k: percentiles(t.seconds, args.batch)
                               for k, t in timings.items()})
        if args.baseline:
            ours = report['results']['model/model']['p50_ms']
            theirs = report['results']['baseline/model']['p50_ms']
            report['p50_speedup_vs_baseline'] = theirs / ours
        rows = []
        for key, values in report['results'].items():
            role, part = key.split('/')
            name = predictors[role].backend.name
            rows.append((f'{name} {part.replace("_", " ")}', values['p50_ms'],
                         values['p90_ms'], values['p99_ms'],
                         values['images_per_s']))
        print(f'{args.model}: batch {args.batch}, input {height}x{width}')
        print(format_table(('backend / part', 'p50 ms', 'p90 ms', 'p99 ms',
                            'images/s'), rows))
        if args.baseline:
            print(f"model p50 speed-up vs PyTorch eager: "
                  f"{report['p50_speedup_vs_baseline']:.3g}x")
        if args.json:
            with open(args.json, 'w', encoding='utf-8') as f:
                json.dump(report, f, indent=2)
                f.write('\n')
        return 0
