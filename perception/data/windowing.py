"""Intensity windowing: modality values (HU for CT) -> [0, 1].

Follows the DICOM linear VOI function (PS3.3 C.11.2.1.2.1) with the output
range [0, 1]::

    y = clip(((x - (c - 0.5)) / (w - 1) + 0.5), 0, 1)      for w > 1

Several windows become several channels, e.g. lung / mediastinum / bone as
the three input channels of an RGB-pretrained backbone.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]
Window = Sequence[float]  # (center, width)


def apply_window(values: Array, center: float, width: float) -> Array:
    """Map ``values`` through one window to [0, 1], keeping the shape.

    Args:
        values: modality values of any shape (numpy or torch).
        center: window centre (DICOM WindowCenter), same units.
        width: window width (DICOM WindowWidth), > 1.

    Returns:
        float32 array/tensor in [0, 1], same shape and library as ``values``.
    """
    if width <= 1:
        raise ValueError(f'window width must be > 1, got {width} '
                         f'(center {center}); DICOM defines width >= 1')
    scale = 1.0 / (width - 1.0)
    offset = 0.5 - (center - 0.5) * scale
    if isinstance(values, torch.Tensor):
        return (values.float() * scale + offset).clamp_(0.0, 1.0)
    out = np.array(values, dtype=np.float32, ndmin=1) * np.float32(scale)
    out += np.float32(offset)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(np.shape(values))


def apply_windows(values: Array, windows: Sequence[Window],
                  axis: int = 0) -> Array:
    """Apply several windows and stack them as channels along a new ``axis``.

    Args:
        values: modality values, e.g. (H, W) slice or (B, H, W) batch.
        windows: ``[(center, width), ...]``, one per output channel.
        axis: where the channel axis goes in the output.

    Returns:
        float32 values in [0, 1] with one more axis of size ``len(windows)``.
    """
    if not windows:
        raise ValueError('apply_windows needs at least one (center, width)')
    channels = [apply_window(values, c, w) for c, w in windows]
    if isinstance(values, torch.Tensor):
        return torch.stack(channels, dim=axis)
    return np.stack(channels, axis=axis)
