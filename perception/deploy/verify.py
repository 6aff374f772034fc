"""Verification run after every export, each check writing a JSON report
beside the model (``parity.json``, ``oplint.json``; the checker's result is
in ``parity.json['checker']``):

- ``onnx.checker`` full check (types and shapes inferred strictly);
- ONNX Runtime vs PyTorch on several batch sizes and, with a dynamic height
  and width, resolutions (inputs: random normal, the preprocessed scale,
  or images of a folder through the bundle's PretrainedCfg): max and
  median abs error of every output, each against ``atol_rel`` times the
  output's scale (its max abs value in the reference), and task-level
  agreement: the detections above
  ``match_score`` after NMS, matched one to one by label and IoU >=
  ``match_iou`` in both directions;
- the static TensorRT op lint for the target (:mod:`perception.deploy.oplint`).

Segmentors and classifiers get their own parity and agreement
(:mod:`perception.deploy.verify_dense`); the rest is shared.

The first parity batch and what PyTorch gave for it are kept in
``reference/`` for checks on the device (``perception deploy check``).
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from perception.deploy.manifest import (
    MODEL_FILE,
    OPLINT_FILE,
    PARITY_FILE,
    REFERENCE_DIR,
    REFERENCE_INPUTS,
    REFERENCE_OUTPUTS,
    Manifest,
)
from perception.deploy.parity_common import (
    check_onnx,
    compare_outputs,
    image_batches,
    parity_cases,
)

__all__ = ['verify_bundle', 'check_onnx', 'compare_outputs',
           'match_detections', 'box_iou']


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes (K, 4) x (L, 4) -> (K, L)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _one_way(ref: dict, other: dict, score: float, iou: float,
             margin: float) -> tuple[int, int, list]:
    """Detections of ``ref`` above ``score`` without a partner in ``other``
    (same label, IoU >= ``iou``, partner above ``score - margin``)."""
    keep = ref['scores'] >= score
    cand = other['scores'] >= score - margin
    boxes, labels = other['boxes'][cand], other['labels'][cand]
    used = np.zeros(len(boxes), bool)
    order = np.argsort(-ref['scores'][keep], kind='stable')
    missing, errors = 0, []
    for box, label, value in zip(ref['boxes'][keep][order],
                                 ref['labels'][keep][order],
                                 ref['scores'][keep][order]):
        ious = box_iou(box[None], boxes)[0] if len(boxes) else np.zeros(0)
        ious[(labels != label) | used] = -1
        best = int(ious.argmax()) if len(ious) else -1
        if best < 0 or ious[best] < iou:
            missing += 1
            continue
        used[best] = True
        errors.append(float(np.abs(boxes[best] - box).max()))
    return int(keep.sum()), missing, errors


def match_detections(reference: list[dict], actual: list[dict], score: float,
                     iou: float, margin: float = 1e-3) -> dict:
    """Task-level agreement per image: every detection above ``score`` of
    either side matched on the other (label, IoU >= ``iou``)."""
    counted = unmatched = 0
    errors: list[float] = []
    for ref, act in zip(reference, actual):
        n, miss, err = _one_way(ref, act, score, iou, margin)
        counted, unmatched, errors = counted + n, unmatched + miss, errors + err
        _, miss, _ = _one_way(act, ref, score, iou, margin)
        unmatched += miss
    return dict(passed=unmatched == 0, detections=counted, unmatched=unmatched,
                max_box_error=max(errors, default=0.0), score=score, iou=iou)


def _as_dets(instances: Any) -> dict:
    return dict(boxes=instances.bboxes.numpy().astype(np.float64),
                scores=instances.scores.numpy().astype(np.float64),
                labels=instances.labels.numpy())


def _ort_dets(outputs: dict) -> list[dict]:
    out = []
    for i in range(len(outputs['num_dets'])):
        n = int(outputs['num_dets'][i])
        out.append(dict(boxes=outputs['det_boxes'][i][:n].astype(np.float64),
                        scores=outputs['det_scores'][i][:n].astype(np.float64),
                        labels=outputs['det_labels'][i][:n]))
    return out


def parity(bundle_dir: str, graph: torch.nn.Module, manifest: Manifest,
           options: Any) -> tuple[dict, dict]:
    """ONNX Runtime vs PyTorch; returns (report, reference arrays)."""
    import onnxruntime as ort

    from perception.models.heads.postprocess import postprocess_detections
    session_options = ort.SessionOptions()
    session_options.log_severity_level = 3
    session = ort.InferenceSession(os.path.join(bundle_dir, MODEL_FILE),
                                   session_options,
                                   providers=['CPUExecutionProvider'])
    post = manifest.postprocess
    in_name, names = manifest.input['name'], manifest.outputs['names']
    channels = int(manifest.input.get('channels') or 3)
    runs, reference = [], {}
    cases = parity_cases(manifest, options)
    folder = getattr(options, 'parity_images', None)
    images = image_batches(folder, manifest, max(b for b, _, _ in cases)) \
        if folder else None
    export_size = tuple(manifest.input['export_size'])
    for index, (batch, height, width) in enumerate(cases):
        if images is not None and (height, width) == export_size:
            inputs = images[:batch]
        else:
            inputs = torch.randn(batch, channels, height, width,
                                 generator=torch.Generator().manual_seed(index))
        with torch.no_grad():
            boxes, scores = graph(inputs)
        got = dict(zip(names, session.run(None, {in_name: inputs.numpy()})))
        run: dict = dict(batch=batch, height=height, width=width,
                         inputs='images' if images is not None and
                         (height, width) == export_size else 'random normal')
        torch_dets = postprocess_detections(
            boxes, scores, score_thr=min(post['score_thr'],
                                         options.match_score),
            nms_iou=post['nms_iou'], max_per_img=post['max_per_img'],
            pre_nms_top_k=0)
        torch_dets = [_as_dets(d) for d in torch_dets]
        if manifest.postprocess['nms'] == 'none':
            run['outputs'] = {
                'boxes': compare_outputs(boxes.numpy(), got['boxes'],
                                         options.atol_rel),
                'scores': compare_outputs(scores.numpy(), got['scores'],
                                          options.atol_rel)}
            ort_dets = postprocess_detections(
                torch.from_numpy(got['boxes']), torch.from_numpy(got['scores']),
                score_thr=min(post['score_thr'], options.match_score),
                nms_iou=post['nms_iou'], max_per_img=post['max_per_img'],
                pre_nms_top_k=0)
            ort_dets = [_as_dets(d) for d in ort_dets]
            if index == 0:
                reference = dict(inputs={in_name: inputs.numpy()},
                                 outputs={'boxes': boxes.numpy(),
                                          'scores': scores.numpy()})
        else:
            ort_dets = _ort_dets(got)
            if index == 0:
                reference = dict(inputs={in_name: inputs.numpy()},
                                 outputs={k: v for k, v in got.items()})
        run['detections'] = match_detections(
            torch_dets, ort_dets, options.match_score, options.match_iou,
            margin=options.atol_rel)
        run['passed'] = run['detections']['passed'] and all(
            o['passed'] for o in run.get('outputs', {}).values())
        runs.append(run)
    report = _summarize(runs, options)
    return report, reference


def _summarize(runs: list[dict], options: Any) -> dict:
    worst: dict = {}
    for run in runs:
        for name, figures in run.get('outputs', {}).items():
            best = worst.setdefault(name, dict(max_abs_error=0.0,
                                               median_abs_error=0.0, scale=0.0))
            for key in best:
                best[key] = max(best[key], figures.get(key, 0.0))
    detections = sum(r['detections']['detections'] for r in runs)
    unmatched = sum(r['detections']['unmatched'] for r in runs)
    passed = all(r['passed'] for r in runs)
    errors = ', '.join(
        f"{name} max {w['max_abs_error']:.3g} median "
        f"{w['median_abs_error']:.3g} (tolerance "
        f"{options.atol_rel * w['scale']:.3g})" for name, w in worst.items())
    shapes = ', '.join(f"{r['batch']}x{r['height']}x{r['width']}"
                       for r in runs)
    summary = (f'parity {"passed" if passed else "FAILED"} on {shapes}: '
               f'{errors + "; " if errors else ""}{detections - unmatched}/'
               f'{detections} detections above {options.match_score} matched '
               f'at IoU >= {options.match_iou}'
               f'{f", {unmatched} unmatched" if unmatched else ""} '
               f'(see {PARITY_FILE})')
    return dict(passed=passed, summary=summary, runs=runs, worst=worst,
                detections=detections, unmatched=unmatched,
                tolerances=dict(atol_rel=options.atol_rel,
                                match_iou=options.match_iou,
                                match_score=options.match_score))


def _write_json(path: str, report: dict) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
        f.write('\n')


def verify_bundle(bundle_dir: str, graph: torch.nn.Module, manifest: Manifest,
                  options: Any) -> dict[str, dict]:
    """Run every check on ``bundle_dir/model.onnx``, write the reports and
    reference arrays; returns ``{'checker', 'parity', 'oplint'}``."""
    from perception.deploy.oplint import lint_model
    onnx_path = os.path.join(bundle_dir, MODEL_FILE)
    checker = check_onnx(onnx_path)
    if checker['passed'] and manifest.task != 'detection':
        from perception.deploy.verify_dense import dense_parity
        report, reference = dense_parity(bundle_dir, graph, manifest, options)
    elif checker['passed']:
        report, reference = parity(bundle_dir, graph, manifest, options)
    else:
        report, reference = dict(passed=False, summary=checker['summary'],
                                 runs=[]), {}
    report['checker'] = checker
    _write_json(os.path.join(bundle_dir, PARITY_FILE), report)
    lint = lint_model(onnx_path, manifest.target)
    _write_json(os.path.join(bundle_dir, OPLINT_FILE), lint)
    if reference:
        folder = os.path.join(bundle_dir, REFERENCE_DIR)
        os.makedirs(folder, exist_ok=True)
        np.savez_compressed(os.path.join(folder, REFERENCE_INPUTS),
                            **reference['inputs'])
        np.savez_compressed(os.path.join(folder, REFERENCE_OUTPUTS),
                            **reference['outputs'])
    return dict(checker=checker, parity=report, oplint=lint)
