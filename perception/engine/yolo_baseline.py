"""``perception benchmark yolo-baseline CONFIG``: the compact-detector row of
the detection study. YOLO11n (Ultralytics) trained from scratch on the
frames and labels of a detection config's training split, for a fixed
wall-clock, then scored by the config's own evaluator on its test split.

The labels are the ones our detector trains on: each dataset of the config
is built with its own filters and class map, and every box that is not an
ignore region (``ignore_flags``, label -1) becomes a YOLO label line.
YOLO has no ignore regions, so what our detector ignores is background to
it. Predictions go through the same :class:`CocoMetric` as ours (ignore
regions and crowd boxes counted the same way), so the two rows compare.

Ultralytics is AGPL-3.0 and not a dependency of this project: install it
where you run this (``pip install ultralytics``); nothing is downloaded at
run time (the model is built from ``yolo11n.yaml``, no weights).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from perception.benchmarks import Benchmark, format_table
from perception.errors import UserError
from perception.registry import BENCHMARKS, DATASETS

#: a predictor: image path -> (N x 4 xyxy source pixels, N scores, N labels)
Predictor = Callable[[str], tuple[np.ndarray, np.ndarray, np.ndarray]]


def without_pipelines(dataset_cfg: dict) -> dict:
    """A dataset config (wrappers and ``ConcatDataset`` included) with every
    pipeline emptied: only the annotations are read."""
    cfg = dict(dataset_cfg)
    if 'pipeline' in cfg:
        cfg['pipeline'] = []
    if 'dataset' in cfg:
        cfg['dataset'] = without_pipelines(cfg['dataset'])
    if 'datasets' in cfg:
        cfg['datasets'] = [without_pipelines(d) for d in cfg['datasets']]
    return cfg


def data_infos(dataset_cfg: dict) -> Iterable[dict]:
    """The data infos (boxes, labels, ignore flags, image path) of a
    dataset config, as its pipeline would receive them."""
    from mmengine.registry import DefaultScope
    # wrappers (ConcatDataset) build their members in the default scope
    with DefaultScope.overwrite_default_scope('perception'):
        dataset = DATASETS.build(without_pipelines(dataset_cfg))
    for i in range(len(dataset)):
        yield dataset.get_data_info(i)


def yolo_lines(info: dict) -> list[str]:
    """``class cx cy w h`` (normalised to the source image) for every box of
    a data info that is not an ignore region."""
    height, width = info['ori_shape']
    lines = []
    for (x1, y1, x2, y2), label, ignore in zip(
            info['gt_bboxes'], info['gt_labels'], info['gt_ignore_flags']):
        if ignore or label < 0:
            continue
        lines.append(f'{int(label)} {(x1 + x2) / 2 / width:.6f} '
                     f'{(y1 + y2) / 2 / height:.6f} {(x2 - x1) / width:.6f} '
                     f'{(y2 - y1) / height:.6f}')
    return lines


def write_yolo_dataset(cfg, out: str | os.PathLike) -> dict:
    """Ultralytics' layout (``train/`` and ``test/`` with ``images/``
    symlinks and ``labels/``, ``data.yaml``) from the config's training and
    test datasets; returns counts of images and boxes per split."""
    out = Path(out)
    classes = list(cfg.model.class_names)
    counts = {}
    for split, loader in (('train', cfg.train_dataloader),
                          ('test', cfg.test_dataloader)):
        images, labels = out / split / 'images', out / split / 'labels'
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        n = boxes = 0
        for info in data_infos(loader.dataset.to_dict()):
            src = Path(info['img_path']).resolve()
            stem = f'{n:06d}_{src.stem}'  # several drives share file names
            link = images / (stem + src.suffix)
            if not link.exists():
                link.symlink_to(src)
            lines = yolo_lines(info)
            (labels / (stem + '.txt')).write_text(
                ''.join(line + '\n' for line in lines))
            n, boxes = n + 1, boxes + len(lines)
        counts[split] = dict(images=n, boxes=boxes)
    names = ''.join(f'  {i}: {name!r}\n' for i, name in enumerate(classes))
    (out / 'data.yaml').write_text(
        f'path: {out.resolve()}\ntrain: train/images\nval: test/images\n'
        f'names:\n{names}')
    return counts


def evaluate(cfg, predict: Predictor) -> dict:
    """The config's first test evaluator (COCO) over its test datasets,
    with ``predict`` in place of our detector."""
    from perception.registry import METRICS
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, (list, tuple)):
        evaluator = evaluator[0]
    metric = METRICS.build(dict(evaluator))
    metric.dataset_meta = dict(classes=list(cfg.model.class_names))
    for info in data_infos(cfg.test_dataloader.dataset.to_dict()):
        boxes, scores, labels = predict(info['img_path'])
        metric.process(None, [dict(
            img_id=len(metric.results), img_shape=info['ori_shape'],
            ori_shape=info['ori_shape'],
            pred_instances=dict(bboxes=np.asarray(boxes, np.float32),
                                scores=np.asarray(scores, np.float32),
                                labels=np.asarray(labels, np.int64)),
            gt_instances=dict(bboxes=info['gt_bboxes'],
                              labels=info['gt_labels'],
                              ignore_flags=info['gt_ignore_flags'],
                              areas=info.get('gt_areas')))])
    return {k: float(v) for k, v in metric.evaluate(len(metric.results)
                                                    ).items()}


def _ultralytics():
    try:
        import ultralytics
    except ImportError:
        raise UserError('yolo-baseline needs Ultralytics (AGPL-3.0, not a '
                        'dependency of this project): pip install '
                        'ultralytics, then run this again') from None
    ultralytics.settings.update(sync=False)
    return ultralytics


def yolo_predictor(weights: str, imgsz: int) -> Predictor:
    """Ultralytics' own inference at its validation settings (conf 0.001,
    IoU 0.7, 300 detections), boxes in source pixels."""
    model = _ultralytics().YOLO(weights)

    def predict(path: str):
        r = model.predict(path, imgsz=imgsz, conf=0.001, iou=0.7,
                          max_det=300, device='cpu', verbose=False)[0]
        return (r.boxes.xyxy.cpu().numpy(), r.boxes.conf.cpu().numpy(),
                r.boxes.cls.cpu().numpy().astype(np.int64))
    return predict


@BENCHMARKS.register_module(name='yolo-baseline')
class YoloBaselineBenchmark(Benchmark):
    name = 'yolo-baseline'
    help = ('YOLO11n (Ultralytics) from scratch on a detection config\'s '
            'data for a fixed wall-clock, scored by the config\'s evaluator')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('config', help='detection config (.py)')
        parser.add_argument('--work-dir', required=True,
                            help='where the YOLO dataset, run and '
                                 'metrics.json go')
        parser.add_argument('--hours', type=float, default=1.0,
                            help='training wall-clock (Ultralytics `time`)')
        parser.add_argument('--imgsz', type=int, default=640)
        parser.add_argument('--batch', type=int, default=8)
        parser.add_argument('--weights', default=None,
                            help='score these weights instead of training')

    def run(self, args: argparse.Namespace) -> int:
        from perception.engine.config import load_config
        ultralytics = _ultralytics()  # before any data is read or written
        cfg = load_config(args.config)
        work = Path(args.work_dir)
        counts = write_yolo_dataset(cfg, work / 'data')
        print(f'yolo-baseline: {counts} in {work / "data"}')
        weights, seconds = args.weights, None
        if weights is None:
            yolo = ultralytics.YOLO('yolo11n.yaml')
            start = time.monotonic()
            yolo.train(data=str(work / 'data' / 'data.yaml'), epochs=1000,
                       time=args.hours, imgsz=args.imgsz, batch=args.batch,
                       workers=1, device='cpu', pretrained=False, amp=False,
                       plots=False, val=False, project=str(work.resolve()),
                       name='yolo11n', exist_ok=True, seed=0)
            seconds = time.monotonic() - start
            weights = str(work / 'yolo11n' / 'weights' / 'last.pt')
        metrics = evaluate(cfg, yolo_predictor(weights, args.imgsz))
        (work / 'metrics.json').write_text(json.dumps(
            dict(metrics=metrics, weights=weights, train_seconds=seconds,
                 hours=args.hours, counts=counts), indent=1))
        print(format_table(('YOLO11n from scratch', 'value'),
                           [(k, v) for k, v in metrics.items()]))
        return 0
