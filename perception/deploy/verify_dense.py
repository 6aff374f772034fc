"""The parity check of segmentors and classifiers (the rest of the
verification is :func:`perception.deploy.verify.verify_bundle`'s): ONNX
Runtime vs PyTorch on every case of the export (batch sizes, and with a
dynamic height and width a second resolution), each float output's max and
median abs error against ``atol_rel`` times its scale, and task-level
agreement:

- segmentation: the share of pixels whose arg-max class is the same
  (PyTorch's logits vs the graph's logits or in-graph class map) must be at
  least ``min_pixel_agreement`` (default 0.999: near-ties may flip);
- classification: the same top-1 class on every sample (a batch of 8 more
  where the batch is dynamic).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from perception.deploy.manifest import MODEL_FILE, PARITY_FILE, Manifest
from perception.deploy.parity_common import compare_outputs, image_batches, parity_cases

__all__ = ['dense_parity', 'pixel_agreement']

#: numpy element types of the in-graph class map, by manifest name.
_LABEL_TYPES = {'int64': np.int64, 'uint8': np.uint8}


def pixel_agreement(reference: np.ndarray, actual: np.ndarray) -> float:
    """Share of equal entries of two label maps of one shape (1.0 if
    empty)."""
    reference, actual = np.asarray(reference), np.asarray(actual)
    if reference.shape != actual.shape:
        return 0.0
    return float((reference == actual).mean()) if reference.size else 1.0


def _inputs(manifest: Manifest, options: Any, cases: list) -> list:
    folder = getattr(options, 'parity_images', None)
    images = image_batches(folder, manifest, max(b for b, _, _ in cases)) \
        if folder else None
    export_size = tuple(manifest.input['export_size'])
    channels = int(manifest.input.get('channels') or 3)
    out = []
    for index, (batch, height, width) in enumerate(cases):
        if images is not None and (height, width) == export_size:
            out.append((images[:batch], 'images'))
        else:
            out.append((torch.randn(batch, channels, height, width,
                                    generator=torch.Generator().manual_seed(
                                        index)), 'random normal'))
    return out


def _segmentation_run(logits: torch.Tensor, want: np.ndarray, got: np.ndarray,
                      name: str, manifest: Manifest, options: Any) -> dict:
    run: dict = dict(outputs={})
    torch_labels = logits.argmax(1).numpy()
    if name == 'logits':
        run['outputs']['logits'] = compare_outputs(want, got, options.atol_rel)
        ort_labels = np.asarray(got).argmax(1)
    else:
        dtype = manifest.postprocess.get('labels_dtype', 'int64')
        run['labels_dtype'] = str(np.asarray(got).dtype)
        run['labels_dtype_ok'] = np.asarray(got).dtype == _LABEL_TYPES[dtype]
        ort_labels = np.asarray(got).astype(np.int64)
    share = pixel_agreement(torch_labels, ort_labels)
    run['pixels'] = dict(agreement=share, pixels=int(torch_labels.size),
                         differing=int(round((1 - share) *
                                             torch_labels.size)),
                         minimum=options.min_pixel_agreement,
                         passed=share >= options.min_pixel_agreement)
    run['passed'] = run['pixels']['passed'] and \
        run.get('labels_dtype_ok', True) and \
        all(o['passed'] for o in run['outputs'].values())
    return run


def _classification_run(logits: torch.Tensor, want: np.ndarray,
                        got: np.ndarray, name: str, options: Any) -> dict:
    compared = compare_outputs(want, got, options.atol_rel)
    torch_top1 = logits.argmax(-1).numpy()
    ort_top1 = np.asarray(got).argmax(-1)
    same = int((torch_top1 == ort_top1).sum()) if \
        torch_top1.shape == ort_top1.shape else 0
    top1 = dict(samples=int(torch_top1.size), same=same,
                passed=same == torch_top1.size)
    return dict(outputs={name: compared}, top1=top1,
                passed=compared['passed'] and top1['passed'])


def dense_parity(bundle_dir: str, graph: torch.nn.Module, manifest: Manifest,
                 options: Any) -> tuple[dict, dict]:
    """ONNX Runtime vs PyTorch for a segmentation or classification
    bundle; returns (report, reference arrays of the first case)."""
    import onnxruntime as ort
    session_options = ort.SessionOptions()
    session_options.log_severity_level = 3
    session = ort.InferenceSession(os.path.join(bundle_dir, MODEL_FILE),
                                   session_options,
                                   providers=['CPUExecutionProvider'])
    in_name, (name, ) = manifest.input['name'], manifest.outputs['names']
    cases = parity_cases(manifest, options)
    segmentation = manifest.task == 'segmentation'
    if not segmentation and manifest.dynamic != 'none':
        height, width = manifest.input['export_size']
        cases.append((8, height, width))
    runs, reference = [], {}
    for index, (inputs, kind) in enumerate(_inputs(manifest, options, cases)):
        with torch.no_grad():
            raw = graph.logits(inputs)
            want = graph.from_logits(raw).numpy()
            logits = raw.float()
        got = session.run(None, {in_name: inputs.numpy()})[0]
        batch, _, height, width = inputs.shape
        if segmentation:
            run = _segmentation_run(logits, want, got, name, manifest,
                                    options)
        else:
            run = _classification_run(logits, want, got, name, options)
        runs.append(dict(batch=int(batch), height=int(height),
                         width=int(width), inputs=kind, **run))
        if index == 0:
            reference = dict(inputs={in_name: inputs.numpy()},
                             outputs={name: want})
    return _summarize(runs, manifest.task, options), reference


def _summarize(runs: list[dict], task: str, options: Any) -> dict:
    worst: dict = {}
    for run in runs:
        for out_name, figures in run['outputs'].items():
            best = worst.setdefault(out_name, dict(
                max_abs_error=0.0, median_abs_error=0.0, scale=0.0))
            for key in best:
                best[key] = max(best[key], figures.get(key, 0.0))
    passed = all(r['passed'] for r in runs)
    errors = ', '.join(
        f"{n} max {w['max_abs_error']:.3g} median {w['median_abs_error']:.3g}"
        f" (tolerance {options.atol_rel * w['scale']:.3g})"
        for n, w in worst.items())
    shapes = ', '.join(f"{r['batch']}x{r['height']}x{r['width']}"
                       for r in runs)
    report: dict = dict(passed=passed, runs=runs, worst=worst,
                        tolerances=dict(atol_rel=options.atol_rel))
    if task == 'segmentation':
        share = min(r['pixels']['agreement'] for r in runs)
        report['pixel_agreement'] = share
        report['tolerances']['min_pixel_agreement'] = \
            options.min_pixel_agreement
        agreement = (f'arg-max pixel agreement {share:.6g} (at least '
                     f'{options.min_pixel_agreement})')
        bad_types = sorted({r['labels_dtype'] for r in runs
                            if not r.get('labels_dtype_ok', True)})
        if bad_types:
            agreement += f', class map of type {bad_types[0]} not the manifest\'s'
    else:
        same = sum(r['top1']['same'] for r in runs)
        samples = sum(r['top1']['samples'] for r in runs)
        report['top1'] = dict(same=same, samples=samples)
        agreement = f'same top-1 class on {same}/{samples} samples'
    report['summary'] = (f'parity {"passed" if passed else "FAILED"} on '
                         f'{shapes}: {errors + "; " if errors else ""}'
                         f'{agreement} (see {PARITY_FILE})')
    return report
