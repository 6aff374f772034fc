"""``perception export --fp16`` / ``--int8``: an FP32 bundle made explicit
FP16 (:mod:`perception.deploy.fp16`) or Q/DQ INT8
(:mod:`perception.deploy.int8`), gated by the task metric against FP32 in
ONNX Runtime (:mod:`perception.deploy.gate`) and linted for the TensorRT
target.

On success the bundle's ``model.onnx`` is the new model (the manifest's
``precision`` and sha256 updated), ``model_fp32.onnx`` the original, and
``precision.json`` records which node runs in which precision, the
calibration, the gate figures and the lint. On a failed gate or lint the
bundle keeps its FP32 ``model.onnx``, the refused model stays as
``model_<precision>.rejected.onnx`` beside ``precision.json``, and
:class:`PrecisionError` says the figures.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Any, Sequence

from perception.deploy.errors import PrecisionError
from perception.deploy.manifest import (
    FP32_MODEL_FILE,
    METADATA_KEY,
    MODEL_FILE,
    PRECISION_FILE,
    load_bundle,
    sha256_file,
)

__all__ = ['PrecisionError', 'apply_precision', 'precision_for_export']


def _write(path: str, report: dict) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2, default=str)
        f.write('\n')


def apply_precision(bundle_dir: str, precision: str,
                    eval_samples: Sequence[dict], *,
                    calib_samples: Sequence[dict] = (),
                    calib_record: dict | None = None,
                    max_drop: float | None = None,
                    keep_head: bool | str = False,
                    method: str = 'minmax',
                    gate_metric: tuple | None = None) -> dict:
    """Make the FP32 bundle ``bundle_dir`` run in ``precision`` ('fp16' or
    'int8'), gated on ``eval_samples`` (labelled, held out from
    ``calib_samples``). ``keep_head`` (INT8): leave the detector head
    unquantized, in FP32 (``True`` / ``'fp32'``) or FP16 (``'fp16'``).
    ``gate_metric``: ``(make_metric, spec, prefix)`` of
    :func:`perception.deploy.gate_metric.gate_metric` (the config's
    evaluator; default COCO AP per class); ``max_drop`` None takes the
    spec's default for ``precision``. Returns the ``precision.json``
    report.

    Raises:
        PrecisionError: the gate or the op lint failed (the bundle stays
            FP32).
    """
    import onnx

    from perception.deploy.calibration import network_inputs
    from perception.deploy.gate import AP_GATE, evaluate_model, gate
    from perception.deploy.oplint import lint_model
    if precision not in AP_GATE['max_drop']:
        raise PrecisionError(f'precision {precision!r}: choose fp16 or int8')
    make_metric, spec, metric_name = gate_metric or (None, AP_GATE, 'coco')
    bundle = load_bundle(bundle_dir)
    manifest = bundle.manifest
    if manifest.precision != 'fp32':
        raise PrecisionError(f"'{bundle_dir}' is already {manifest.precision}"
                             '; convert an FP32 bundle (export again)')
    max_drop = float(spec['max_drop'][precision] if max_drop is None
                     else max_drop)
    fp32_path = os.path.join(bundle_dir, FP32_MODEL_FILE)
    shutil.copyfile(bundle.onnx_path, fp32_path)
    model = onnx.load(fp32_path)
    report: dict = dict(precision=precision, fp32_model=FP32_MODEL_FILE,
                        fp32_sha256=sha256_file(fp32_path))
    if precision == 'fp16':
        from perception.deploy.fp16 import convert_fp16
        candidate, record = convert_fp16(model)
        report.update(tool='perception.deploy.fp16', casts=record['casts'],
                      nodes=record['nodes'], counts=record['counts'])
    else:
        from perception.deploy.int8 import head_nodes, qdq_report, quantize_int8
        if not calib_samples:
            raise PrecisionError('--int8 needs calibration images '
                                 '(--calib-data PATH --calib-images N)')
        size = manifest.input.get('export_size') or \
            manifest.input['shape'][2:]
        if not all(isinstance(v, int) for v in size):
            raise PrecisionError("the manifest records no export size "
                                 "(input.export_size); re-export")
        batches = network_inputs(calib_samples, bundle.pretrained_cfg, size)
        exclude = head_nodes(model) if keep_head else []
        if keep_head and not exclude:
            raise PrecisionError('--int8-keep-head: no node of the graph '
                                 'belongs to the detector head (names or '
                                 'name scopes with "head")')
        candidate, record = quantize_int8(model, manifest.input['name'],
                                          batches, exclude, method)
        qdq = qdq_report(candidate)
        if keep_head == 'fp16':  # the unquantized head in FP16, rest as is
            from perception.deploy.fp16 import convert_fp16
            head = set(exclude)
            candidate, half = convert_fp16(candidate, keep_fp32=[
                n.name for n in candidate.graph.node if n.name not in head])
            for name, precision_ in half['nodes'].items():
                if precision_ == 'fp16':
                    qdq['nodes'][name] = 'fp16'
            qdq['counts']['fp16'] = half['counts']['fp16']
            for op, count in half['counts']['fp16'].items():
                qdq['counts']['fp32'][op] = qdq['counts']['fp32'].get(
                    op, 0) - count
        report.update(record, calibration=dict(calib_record or {}),
                      keep_head=keep_head or False, nodes=qdq['nodes'],
                      counts=qdq['counts'],
                      max_abs_zero_point=qdq['max_abs_zero_point'],
                      qdq_scales=qdq['qdq_scales'])
    manifest.precision = precision
    del candidate.metadata_props[:]
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = manifest.metadata_json()
    for key, value in props.items():
        candidate.metadata_props.add(key=key, value=value)
    candidate_path = os.path.join(bundle_dir, f'model_{precision}.onnx')
    onnx.save(candidate, candidate_path)
    onnx.checker.check_model(candidate_path, full_check=True)
    lint = lint_model(candidate, manifest.target)
    report['oplint'] = dict(target=manifest.target, passed=lint['passed'],
                            summary=lint['summary'],
                            errors=lint['errors'][:20])
    names = bundle.pretrained_cfg.class_names
    samples = list(eval_samples)
    reference = evaluate_model(bundle_dir, fp32_path, samples, names,
                               make_metric)
    got = evaluate_model(bundle_dir, candidate_path, samples, names,
                         make_metric)
    report['gate'] = gate(reference, got, max_drop, precision, spec,
                          metric_name)
    report['passed'] = report['gate']['passed'] and lint['passed']
    report_path = os.path.join(bundle_dir, PRECISION_FILE)
    if not report['passed']:
        rejected = os.path.join(bundle_dir, f'model_{precision}.rejected.onnx')
        os.replace(candidate_path, rejected)
        os.remove(fp32_path)
        report['rejected_model'] = os.path.basename(rejected)
        _write(report_path, report)
        why = report['gate']['summary'] if not report['gate']['passed'] \
            else lint['summary']
        hint = (' (--int8-keep-head keeps the head unquantized; more or '
                'better --calib-images help)' if precision == 'int8' else '')
        raise PrecisionError(f"{why}; the bundle stays fp32, figures in "
                             f"'{report_path}'{hint}")
    os.replace(candidate_path, os.path.join(bundle_dir, MODEL_FILE))
    manifest.sha256 = sha256_file(os.path.join(bundle_dir, MODEL_FILE))
    manifest.write(bundle_dir)
    _write(report_path, report)
    return report


def precision_for_export(bundle_dir: str, options: Any, config: str,
                         cfg_options: Sequence[str] = ()) -> dict | None:
    """What ``export_detector`` calls after the FP32 bundle passed: the
    options' ``precision`` ('fp32' does nothing), calibration from
    ``calib_data`` (a split of ``config`` or a folder), the gate on
    ``gate_split`` (default: the config's test split, else val), held out
    from the calibration images, by the config's evaluator of that split
    (:mod:`perception.deploy.gate_metric`)."""
    from perception.deploy.calibration import dataset_samples, draw, split_samples
    from perception.deploy.gate_metric import gate_metric
    precision = getattr(options, 'precision', 'fp32') or 'fp32'
    if precision == 'fp32':
        return None
    split = getattr(options, 'gate_split', None)
    if split is None:
        from perception.engine.config import load_config
        cfg = load_config(config, cfg_options)
        split = next((s for s in ('test', 'val')
                      if (cfg.get(f'{s}_dataloader') or {}).get('dataset')),
                     None)
        if split is None:
            raise PrecisionError(f'{config}: no test or val dataset to gate '
                                 f'--{precision} on (pass --gate-split)')
    calib, record = [], {}
    count = int(getattr(options, 'calib_images', 0) or 0)
    calib_data = getattr(options, 'calib_data', None)
    if precision == 'int8':
        if not calib_data:
            raise PrecisionError('--int8 needs --calib-data (a split of the '
                                 'config: val/test/train, or a folder of '
                                 'images) and --calib-images N')
        calib, record = draw(calib_data, count or 64, config, split,
                             cfg_options)
    dataset, length = split_samples(config, split, cfg_options)
    names = load_bundle(bundle_dir).pretrained_cfg.class_names
    metric = gate_metric(config, split, names,
                         dict(getattr(dataset, 'metainfo', None) or {}),
                         cfg_options)
    held_out = set(record.get('indices', [])) if calib_data == split else set()
    limit = int(getattr(options, 'gate_images', 0) or 0) or length
    indices = [i for i in range(length) if i not in held_out][:limit]
    report = apply_precision(
        bundle_dir, precision, dataset_samples(dataset, indices),
        calib_samples=calib, calib_record=dict(record, gate_split=split),
        max_drop=getattr(options, 'max_drop', None),
        keep_head=getattr(options, 'int8_keep_head', False) or False,
        method=getattr(options, 'calib_method', 'minmax'),
        gate_metric=metric)
    return report
