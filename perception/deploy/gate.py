"""The precision gate: an FP16 / INT8 model against its FP32 original on
held-out labelled samples, in ONNX Runtime, by the task metric.

The metric is the config's evaluator (:mod:`perception.deploy.gate_metric`
builds it through the registry); its class says which of its figures the
gate compares and by how much a precision may lose it (its
``precision_gate``, see :data:`AP_GATE`). Detection: COCO box AP
(``CocoMetric``, per class) of each model's detections in source pixels,
post-processed as the bundle says; the gate passes when ``AP(fp32) -
AP(candidate) <= max_drop`` (AP points, 0..100). Lesion detectors gate on
their metric's figure the same way (e.g. FROC sensitivity at 2 FPs per
scan, by nodule size).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = ['evaluate_model', 'gate', 'gate_spec', 'AP_GATE',
           'DEFAULT_MAX_DROP']

#: the gate of COCO AP (CocoMetric's; another metric declares its own
#: as a ``precision_gate`` class attribute of this form):
#: ``key`` the figure (unprefixed), ``scale`` to the reported unit,
#: ``unit``, default ``max_drop`` per precision, ``groups`` the prefix of
#: the per-group figures, ``group_by`` their name in the report
#: (``per_<group_by>``) and ``groups_label`` in the summary,
#: ``build`` overrides the evaluator is built with, ``digits``, ``samples``.
AP_GATE = dict(key='AP', scale=100.0, unit='points', label='AP',
               max_drop={'fp16': 1.0, 'int8': 2.0}, groups='AP_',
               group_by='class', groups_label='classes',
               # ground truth from the gate's samples, in source pixels
               build=dict(classwise=True, map_back=False, ann_file=None,
                          outfile=None),
               digits=2, samples='images')
#: AP points a precision may lose against FP32 by default (detection).
DEFAULT_MAX_DROP = AP_GATE['max_drop']

_SPEC_KEYS = set(AP_GATE) | {'metric', 'type'}


def gate_spec(metric: Any, override: dict | None = None) -> dict | None:
    """The ``precision_gate`` a metric (instance or class) declares, with
    ``override`` (a config's ``precision_gate``) on top; None when the
    metric declares none."""
    declared = getattr(metric, 'precision_gate', None)
    if declared is None:
        from perception.evaluation.coco_metric import CocoMetric
        cls = metric if isinstance(metric, type) else type(metric)
        if not issubclass(cls, CocoMetric):
            return None
        declared = AP_GATE
    spec = dict(AP_GATE, groups=None, group_by=None, groups_label=None,
                build={})
    spec.update(declared)
    unknown = set(override or {}) - _SPEC_KEYS
    if unknown:
        from perception.deploy.errors import PrecisionError
        raise PrecisionError(f'precision_gate in the config: unknown keys '
                             f'{sorted(unknown)}; use key, max_drop (a number '
                             'or dict(fp16=..., int8=...)), scale, unit, type')
    for name, value in (override or {}).items():
        if name == 'max_drop' and not isinstance(value, dict):
            value = {'fp16': float(value), 'int8': float(value)}
        if name == 'max_drop':
            value = dict(spec['max_drop'], **value)
        spec[name] = value
    if 'key' in (override or {}) and 'label' not in (override or {}):
        spec['label'] = spec['key']
    return spec


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


def _coco(class_names: Sequence[str]):
    from perception.evaluation.coco_metric import CocoMetric
    return CocoMetric(classes=list(class_names), classwise=True,
                      map_back=False)


def evaluate_model(bundle_dir: str, onnx_path: str, samples: Iterable[dict],
                   class_names: Sequence[str],
                   make_metric: Callable[[], Any] | None = None) -> dict:
    """The metrics of ``onnx_path`` with the bundle's preprocessing and
    post-processing on labelled ``samples`` (each sample's ``meta``, e.g.
    a CT slice's ``series_uid`` / ``slice_index`` / ``affine``, goes to the
    metric). ``make_metric`` gives a fresh metric (default: COCO AP, per
    class)."""
    predictor = _predictor(bundle_dir, onnx_path)
    metric = make_metric() if make_metric is not None else _coco(class_names)
    count = 0
    for i, sample in enumerate(samples):
        pred = predictor.predict([sample['image']])[0].pred_instances
        height, width = sample['image'].shape[:2]
        labels = np.asarray(sample['gt_labels'])
        metric.process(None, [dict(
            dict(sample.get('meta') or {}), img_id=i + 1, pred_space='source',
            img_shape=(height, width), ori_shape=(height, width),
            pred_instances=dict(bboxes=pred.bboxes.numpy(),
                                scores=pred.scores.numpy(),
                                labels=pred.labels.numpy()),
            gt_instances=dict(bboxes=np.asarray(sample['gt_bboxes']),
                              labels=labels,
                              ignore_flags=np.asarray(sample.get(
                                  'gt_ignore', np.zeros(len(labels),
                                                        bool)))))])
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
    out = {k: round(float(v), 4) for k, v in metrics.items()
           if isinstance(v, (int, float, np.number))}
    return dict(out, images=count)


def _value(metrics: dict, key: str, scale: float) -> float:
    """A figure in the gate's unit; undefined (missing, nan, COCO's -1)
    is nan."""
    value = metrics.get(key)
    if value is None or not np.isfinite(value) or value < 0:
        return float('nan')
    return float(value) * scale


def gate(reference: dict, candidate: dict, max_drop: float,
         precision: str, spec: dict | None = None,
         metric_name: str = 'coco') -> dict:
    """Compare the metrics of :func:`evaluate_model` by ``spec``
    (default :data:`AP_GATE`); a report dict with ``passed`` and a
    one-line ``summary`` naming the figures."""
    spec = spec or AP_GATE
    key, scale, digits = spec['key'], float(spec['scale']), spec['digits']
    ref_value = _value(reference, key, scale)
    got_value = _value(candidate, key, scale)
    drop = ref_value - got_value
    groups: dict = {}
    prefix = spec.get('groups')
    for name in sorted(reference) if prefix else ():
        if name.startswith(prefix):
            ref = _value(reference, name, scale)
            got = _value(candidate, name, scale)
            groups[name[len(prefix):]] = dict(
                fp32=round(ref, digits + 1), **{precision: round(got, digits + 1)},
                drop=round(ref - got, digits + 1))
    passed = bool(np.isfinite(drop) and drop <= max_drop)
    # groups without ground truth in the split are undefined (nan): not shown
    scored = [kv for kv in groups.items() if np.isfinite(kv[1]['fp32'])]
    worst = sorted(scored, key=lambda kv: -np.nan_to_num(
        kv[1]['drop'], nan=0.0))[:3]
    shown = ', '.join(f"{name} {v['fp32']:.{digits - 1}f}->"
                      f"{v[precision]:.{digits - 1}f}" for name, v in worst)
    unit = f" {spec['unit']}" if spec.get('unit') else ''
    why = '' if np.isfinite(ref_value) else (
        f'; {key} is undefined on this split (no ground truth to find): '
        'gate on a labelled split (--gate-split)')
    scans = f" of {int(candidate['scans'])} scans" \
        if 'scans' in candidate else ''
    by = f"; worst {spec['groups_label'] or spec['group_by']} " \
        f"{shown or 'none scored'}" \
        if prefix else ''
    summary = (f'{precision} gate {"passed" if passed else "FAILED"}: '
               f"{spec['label']} {ref_value:.{digits}f} (fp32) -> "
               f'{got_value:.{digits}f} ({precision}), drop {drop:.{digits}f}'
               f'{unit} (max {max_drop:g}) on {candidate["images"]} held-out '
               f"{spec['samples']}{scans}{by}{why}")
    report = dict(passed=passed, metric=f'{metric_name}/{key}'
                  + (f' ({spec["unit"]})' if spec.get('unit') else ''),
                  max_drop=max_drop, drop=round(float(drop), digits + 2),
                  **{'fp32_value': round(ref_value, digits + 2),
                     f'{precision}_value': round(got_value, digits + 2)},
                  fp32=reference, candidate=candidate, summary=summary)
    if prefix:
        report[f"per_{spec['group_by']}"] = groups
    return report
