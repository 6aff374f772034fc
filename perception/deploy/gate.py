"""The precision gate: an FP16 / INT8 model against its FP32 original on
held-out labelled samples, in ONNX Runtime, by the task metric.

Detection: COCO box AP (``CocoMetric``, the config's evaluator's metric,
per class) of each model's detections in source pixels, post-processed as
the bundle says (threshold, NMS, max detections). The gate passes when
``AP(fp32) - AP(candidate) <= max_drop`` (AP points, 0..100).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = ['evaluate_model', 'gate', 'DEFAULT_MAX_DROP']

#: AP points a precision may lose against FP32 by default.
DEFAULT_MAX_DROP = {'fp16': 1.0, 'int8': 2.0}


def _predictor(bundle_dir: str, onnx_path: str):
    """A predictor of the bundle's settings running ``onnx_path``."""
    import onnxruntime as ort

    from perception.deploy.backends import OnnxRuntimeBackend
    from perception.deploy.predictor import Predictor
    backend = OnnxRuntimeBackend(bundle_dir, check_sha256=False,
                                 providers=['CPUExecutionProvider'])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    backend.session = ort.InferenceSession(onnx_path, options,
                                           providers=['CPUExecutionProvider'])
    backend.source = onnx_path
    return Predictor(backend)


def evaluate_model(bundle_dir: str, onnx_path: str, samples: Iterable[dict],
                   class_names: Sequence[str]) -> dict:
    """COCO metrics (AP, AP50, ..., ``AP_<class>``) of ``onnx_path`` with the
    bundle's preprocessing and post-processing on labelled ``samples``."""
    from perception.evaluation.coco_metric import CocoMetric
    predictor = _predictor(bundle_dir, onnx_path)
    metric = CocoMetric(classes=list(class_names), classwise=True,
                        map_back=False)
    count = 0
    for i, sample in enumerate(samples):
        pred = predictor.predict([sample['image']])[0].pred_instances
        height, width = sample['image'].shape[:2]
        metric.process(None, [dict(
            img_id=i + 1, img_shape=(height, width), ori_shape=(height, width),
            pred_instances=dict(bboxes=pred.bboxes.numpy(),
                                scores=pred.scores.numpy(),
                                labels=pred.labels.numpy()),
            gt_instances=dict(bboxes=np.asarray(sample['gt_bboxes']),
                              labels=np.asarray(sample['gt_labels']),
                              ignore_flags=np.asarray(sample.get(
                                  'gt_ignore', np.zeros(len(
                                      sample['gt_labels']), bool)))))])
        count += 1
    if not count:
        from perception.deploy.calibration import CalibrationError
        raise CalibrationError('the precision gate has no held-out images '
                               'left; use a larger split or fewer '
                               '--calib-images')
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = metric.compute_metrics(metric.results)
    return dict({k: round(float(v), 3) for k, v in metrics.items()},
                images=count)


def _ap(value: float) -> float:
    """CocoMetric's AP (0..1, -1 when undefined) in points (0..100)."""
    return float(value) * 100.0 if value >= 0 else float('nan')


def gate(reference: dict, candidate: dict, max_drop: float,
         precision: str) -> dict:
    """Compare the metrics of :func:`evaluate_model`; a report dict with
    ``passed`` and a one-line ``summary`` naming the figures."""
    drop = _ap(reference['AP']) - _ap(candidate['AP'])
    per_class: dict = {}
    for key in sorted(reference):
        if key.startswith('AP_'):
            ref, got = _ap(reference[key]), _ap(candidate.get(key, -1))
            per_class[key[3:]] = dict(fp32=round(ref, 2),
                                      **{precision: round(got, 2)},
                                      drop=round(ref - got, 2))
    passed = bool(np.isfinite(drop) and drop <= max_drop)
    # classes without ground truth in the split have no AP (nan): not shown
    scored = [kv for kv in per_class.items() if np.isfinite(kv[1]['fp32'])]
    worst = sorted(scored, key=lambda kv: -np.nan_to_num(
        kv[1]['drop'], nan=0.0))[:3]
    classes = ', '.join(f"{name} {v['fp32']:.1f}->{v[precision]:.1f}"
                        for name, v in worst)
    summary = (f'{precision} gate {"passed" if passed else "FAILED"}: AP '
               f'{_ap(reference["AP"]):.2f} (fp32) -> '
               f'{_ap(candidate["AP"]):.2f} ({precision}), drop {drop:.2f} '
               f'points (max {max_drop:g}) on {candidate["images"]} held-out '
               f'images; worst classes {classes or "none scored"}')
    return dict(passed=passed, metric='coco/AP (points)', max_drop=max_drop,
                drop=round(float(drop), 3), fp32=reference, candidate=candidate,
                per_class=per_class, summary=summary)
