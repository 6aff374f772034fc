"""``perception benchmark detector CONFIG``: training throughput (images/s)
and eager inference latency (p50/p90) of a config's detector at its input
size, split into backbone, neck, head and post-processing, against
torchvision's SSDlite (MobileNetV3, no weights: nothing is downloaded; it
resizes the same images to its 320x320 input) at the same batch, measured in
the same run."""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch

from perception.benchmarks import Benchmark, format_table
from perception.data.pretrained_cfg import config_pipeline
from perception.registry import BENCHMARKS, MODELS


def _input_size(cfg) -> tuple[int, int]:
    """(height, width) of the config's test pipeline ``Resize``."""
    for step in config_pipeline(cfg, ('test_dataloader',)):
        if step.get('type') == 'Resize':
            width, height = step['scale']
            return int(height), int(width)
    return 384, 640


def _samples(batch: int, height: int, width: int, num_classes: int):
    from perception.structures import DataSample, make_instances
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(batch):
        x0 = rng.uniform(0, width * 0.7, 4)
        y0 = rng.uniform(0, height * 0.7, 4)
        boxes = np.stack([x0, y0, x0 + rng.uniform(8, width * 0.3, 4),
                          y0 + rng.uniform(8, height * 0.3, 4)], 1)
        sample = DataSample(metainfo=dict(img_shape=(height, width),
                                          ori_shape=(height, width)))
        sample.gt_instances = make_instances(
            boxes.astype(np.float32), rng.integers(0, num_classes, 4))
        samples.append(sample)
    return samples


def _percentiles(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return (statistics.median(times),
            times[min(int(round(0.9 * (len(times) - 1))), len(times) - 1)])


@BENCHMARKS.register_module(name='detector')
class DetectorBenchmark(Benchmark):
    name = 'detector'
    help = ('training images/s and inference latency p50/p90 of a detection '
            'config (backbone / neck / head / post-processing), vs SSDlite')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('config', help='detection config (.py)')
        parser.add_argument('--batch', type=int, default=4,
                            help='training batch size')
        parser.add_argument('--steps', type=int, default=5,
                            help='timed training steps')
        parser.add_argument('--repeats', type=int, default=20,
                            help='timed inference runs (batch 1)')
        parser.add_argument('--threads', type=int, default=0,
                            help='torch threads (0: leave as is)')

    def run(self, args: argparse.Namespace) -> int:
        from perception.engine.config import load_config
        if args.threads:
            torch.set_num_threads(args.threads)
        cfg = load_config(args.config)
        height, width = _input_size(cfg)
        model = MODELS.build(cfg.model)
        num_classes = model.num_classes
        train = self._train_rate(model, args, height, width, num_classes)
        rows = self._latency(model.eval(), args.repeats, height, width)
        baseline_train, baseline_latency = self._baseline(
            args, height, width, num_classes)
        print(f'{args.config}: input {width}x{height}, torch threads '
              f'{torch.get_num_threads()}')
        print(format_table(
            ('training', 'images/s', 'vs SSDlite'),
            [('ours', train, train / baseline_train),
             ('SSDlite320 MobileNetV3 (torchvision)', baseline_train, 1.0)]))
        total = rows[-1][1]
        print(format_table(
            ('inference (batch 1)', 'p50 ms', 'p90 ms', 'share of p50'),
            [(name, p50 * 1e3, p90 * 1e3, p50 / total)
             for name, p50, p90 in rows]))
        print(f'whole detector p50 vs SSDlite: {baseline_latency / total:.3g}x '
              f'(SSDlite p50 {baseline_latency * 1e3:.4g} ms); the weights '
              'are untrained, so NMS sees few boxes above the threshold')
        return 0

    @staticmethod
    def _train_rate(model, args, height, width, num_classes) -> float:
        model.train()
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-4)
        images = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
                  for _ in range(args.batch)]

        def step() -> None:
            data = model.data_preprocessor(dict(
                inputs=images,
                data_samples=_samples(args.batch, height, width,
                                      num_classes)), True)
            losses = model(data['inputs'], data['data_samples'], mode='loss')
            loss = sum(v for v in losses.values() if v.requires_grad)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        return args.steps * args.batch / (time.perf_counter() - start)

    @staticmethod
    def _latency(model, repeats, height, width) -> list[tuple]:
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
        with torch.no_grad():
            inputs = model.data_preprocessor(dict(inputs=[image]))['inputs']
            maps = model.backbone(inputs)
            feats = model.neck(maps)
            raw = model.head.predict_raw(feats)
            parts = [
                ('backbone', lambda: model.backbone(inputs)),
                ('neck', lambda: model.neck(maps)),
                ('head (decode)', lambda: model.head.predict_raw(feats)),
                ('post-processing (NMS)',
                 lambda: model.head.postprocess(*raw)),
                ('whole predict', lambda: model.predict(inputs)),
            ]
            return [(name, *_percentiles(fn, repeats)) for name, fn in parts]

    @staticmethod
    def _baseline(args, height, width, num_classes) -> tuple[float, float]:
        from torchvision.models.detection import ssdlite320_mobilenet_v3_large
        # SSDlite resizes every image to its own 320x320 input
        model = ssdlite320_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=num_classes + 1)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        images = [torch.rand(3, height, width) for _ in range(args.batch)]
        targets = [dict(boxes=s.gt_instances.bboxes,
                        labels=s.gt_instances.labels + 1)
                   for s in _samples(args.batch, height, width, num_classes)]

        def step() -> None:
            losses = model(images, targets)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
        model.train()
        step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        rate = args.steps * args.batch / (time.perf_counter() - start)
        model.eval()
        with torch.no_grad():
            p50, _ = _percentiles(lambda: model([images[0]]), args.repeats)
        return rate, p50
