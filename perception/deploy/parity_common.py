"""What every parity check of an export shares: the ``onnx.checker`` run,
the error of one output against its reference, the (batch, height, width)
cases of the export and a batch of real images through the bundle's
PretrainedCfg (used by :mod:`perception.deploy.verify` for detectors and
:mod:`perception.deploy.verify_dense` for segmentors and classifiers)."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from perception.deploy.manifest import Manifest

__all__ = ['check_onnx', 'compare_outputs', 'parity_cases', 'image_batches']


def check_onnx(path: str) -> dict:
    """``onnx.checker.check_model(full_check=True)`` as a report."""
    import onnx
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as exc:  # the checker's own error types vary
        first = str(exc).strip().splitlines()
        message = first[0] if first else type(exc).__name__
        return dict(passed=False, error=message,
                    summary=f'onnx.checker failed: {message}')
    return dict(passed=True, error=None, summary='onnx.checker passed')


def compare_outputs(reference: np.ndarray, actual: np.ndarray,
                    atol_rel: float) -> dict:
    """Max / median abs error of ``actual`` against ``reference`` and the
    tolerance ``atol_rel * scale`` (scale: max abs reference value, >= 1e-6)."""
    reference = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if reference.shape != actual.shape:
        return dict(passed=False, shape=list(actual.shape),
                    expected_shape=list(reference.shape))
    error = np.abs(reference - actual)
    scale = float(max(np.abs(reference).max(initial=0.0), 1e-6))
    finite = bool(np.isfinite(actual).all())
    max_err = float(error.max(initial=0.0))
    return dict(passed=finite and max_err <= atol_rel * scale,
                max_abs_error=max_err,
                median_abs_error=float(np.median(error)) if error.size else 0.0,
                scale=scale, tolerance=atol_rel * scale, finite=finite)


def parity_cases(manifest: Manifest, options: Any) -> list[tuple[int, int, int]]:
    """(batch, height, width) of every parity run."""
    height, width = manifest.input['export_size']
    divisor = max(int(manifest.pretrained.pad_size_divisor or 1), 1)
    batches = list(options.batch_sizes) if manifest.dynamic != 'none' else [1]
    sizes = [(height, width)]
    if manifest.dynamic == 'batch,hw':
        smaller = (max(divisor, (height * 3 // 4) // divisor * divisor),
                   max(divisor, (width // 2) // divisor * divisor))
        sizes.append(smaller)
    return [(b, h, w) for (h, w) in sizes for b in batches]


def image_batches(folder: str, manifest: Manifest,
                   count: int) -> torch.Tensor:
    """Up to ``count`` images of ``folder`` through the bundle's
    PretrainedCfg, padded (zeros after normalization, as the data
    preprocessor pads) to the export size: (count, C, H, W)."""
    import torch.nn.functional as F

    from perception.data.image_io import read_image
    from perception.deploy.errors import ExportError
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(
        ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')))[:count]
    if not names:
        raise ExportError(f"--parity-images '{folder}' holds no .png/.jpg "
                          'images')
    height, width = manifest.input['export_size']
    pretrained, batch = manifest.pretrained, []
    for name in names:
        tensor = pretrained.preprocess(read_image(os.path.join(folder, name)))
        if tensor.shape[1] > height or tensor.shape[2] > width:
            raise ExportError(f"--parity-images: '{name}' preprocesses to "
                              f'{tuple(tensor.shape[1:])}, larger than the '
                              f'export size {height}x{width}')
        batch.append(F.pad(tensor, (0, width - tensor.shape[2], 0,
                                    height - tensor.shape[1])))
    while len(batch) < count:
        batch.append(batch[len(batch) % len(names)])
    return torch.stack(batch)
