"""``perception deploy check BUNDLE``: on the device, build the bundle's
engine, check it against the bundle's reference inputs and outputs (what
PyTorch gave at export), benchmark it, and write one JSON report a user
can attach to a bug report (device facts included, no paths beyond the
bundle's name).

Tolerances by the bundle's precision (max abs error relative to each
output's scale): fp32 1e-2 (TensorRT may use TF32), fp16 3e-2, int8: the
detections above 0.3 must match at IoU 0.5 (element-wise errors of a
quantized model say little).
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

from perception.errors import UserError

__all__ = ['CheckStopped', 'deploy_check', 'TOLERANCES']

TOLERANCES = {'fp32': 1e-2, 'fp16': 3e-2, 'int8': None}


class CheckStopped(UserError, RuntimeError):
    """The check cannot run here (no TensorRT, no GPU); the report says so."""


def _write(path: str, report: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2, default=str)
        f.write('\n')


def _parity(backend: Any, bundle: Any, precision: str) -> dict:
    import numpy as np
    import torch

    from perception.deploy.verify import compare_outputs, match_detections
    from perception.models.heads.postprocess import postprocess_detections
    reference = bundle.reference()
    if reference is None:
        return dict(passed=False, summary='the bundle has no reference/ '
                    'inputs and outputs; re-export it')
    inputs, expected = reference
    got = backend.run(torch.from_numpy(inputs[bundle.manifest.input['name']]))
    got = dict(zip(backend.output_names, [g.numpy() for g in got]))
    tol = TOLERANCES[precision]
    report: dict = dict(precision=precision, atol_rel=tol, outputs={})
    if tol is not None:
        for name, want in expected.items():
            report['outputs'][name] = compare_outputs(want, got[name], tol)
    passed = all(o['passed'] for o in report['outputs'].values())
    if bundle.manifest.postprocess.get('nms') == 'none':
        post = bundle.manifest.postprocess

        def dets(boxes, scores):
            out = postprocess_detections(
                torch.from_numpy(np.asarray(boxes)).float(),
                torch.from_numpy(np.asarray(scores)).float(), score_thr=0.3,
                nms_iou=post['nms_iou'], max_per_img=post['max_per_img'],
                pre_nms_top_k=0)
            return [dict(bboxes=d.bboxes.numpy(), scores=d.scores.numpy(),
                         labels=d.labels.numpy()) for d in out]
        report['detections'] = match_detections(
            dets(expected['boxes'], expected['scores']),
            dets(got['boxes'], got['scores']), 0.3,
            0.5 if precision == 'int8' else 0.9, margin=tol or 0.05)
        passed = passed and report['detections']['passed']
    report['passed'] = bool(passed)
    report['summary'] = (f"parity vs the bundle's reference ({precision}): "
                         f"{'passed' if passed else 'FAILED'}")
    return report


def _benchmark(backend: Any, shape: list, runs: int) -> dict:
    import numpy as np
    import torch
    batch = torch.zeros(shape)
    for _ in range(3):
        backend.run(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.run(batch)
        times.append((time.perf_counter() - start) * 1000)
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return dict(shape=list(shape), runs=runs, p50_ms=round(float(p50), 3),
                p90_ms=round(float(p90), 3), p99_ms=round(float(p99), 3),
                includes='host->device copy, execute_async_v3, sync, '
                'device->host copy')


def deploy_check(bundle_dir: str, out: str | None = None, runs: int = 50,
                 build: Any = None, trt: Any = None) -> dict:
    """Run the check; returns the report (also written to ``out``, default
    ``<bundle>/deploy_check.json``).

    Raises:
        CheckStopped: TensorRT or a CUDA GPU is missing (report written).
    """
    from perception.deploy.doctor import collect
    from perception.deploy.manifest import load_bundle
    from perception.deploy.tensorrt import TensorRTMissing, import_tensorrt
    out = out or os.path.join(bundle_dir, 'deploy_check.json')
    bundle = load_bundle(bundle_dir)
    facts = collect()
    report: dict = dict(bundle=os.path.basename(os.path.abspath(bundle_dir)),
                        onnx_sha256=bundle.manifest.sha256,
                        precision=bundle.manifest.precision, device=facts)
    try:
        trt = trt or import_tensorrt()
    except TensorRTMissing as exc:
        report.update(status='stopped', reason=str(exc))
        _write(out, report)
        raise CheckStopped(f'deploy check stopped: {exc} (report: {out})'
                           ) from None
    if not facts['cuda_available']:
        reason = 'no CUDA GPU visible to torch (torch.cuda.is_available() ' \
            'is False)'
        report.update(status='stopped', reason=reason)
        _write(out, report)
        raise CheckStopped(f'deploy check stopped: {reason} (report: {out})')
    from perception.deploy.tensorrt.builder import BuildOptions, build_engine
    from perception.deploy.tensorrt.runtime import TensorRTBackend
    start = time.perf_counter()
    report['engine'] = build_engine(bundle_dir, build or BuildOptions(), trt)
    report['build_s'] = round(time.perf_counter() - start, 1)
    backend = TensorRTBackend(bundle_dir, trt=trt)
    report['parity'] = _parity(backend, bundle, bundle.manifest.precision)
    export_size = bundle.manifest.input.get('export_size') or \
        bundle.manifest.input['shape'][2:]
    shape = [backend.static_batch or 1, bundle.pretrained_cfg.in_chans,
             *export_size]
    report['latency'] = _benchmark(backend, shape, runs)
    report['status'] = 'passed' if report['parity']['passed'] else 'failed'
    _write(out, report)
    return report
