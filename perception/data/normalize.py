"""The one numeric path from raw model input to what a network sees:
window modality values into channels (CT), then normalize. The data
preprocessor (training, testing) and :meth:`PretrainedCfg.preprocess`
(inference, export checks) both call :func:`normalize_inputs`, so they can
never disagree."""
from __future__ import annotations

from typing import Sequence

import torch

from perception.data.windowing import apply_windows


def normalize_inputs(inputs: torch.Tensor,
                     windows: Sequence[Sequence[float]] = (),
                     mean: torch.Tensor | Sequence[float] | None = None,
                     std: torch.Tensor | Sequence[float] | None = None
                     ) -> torch.Tensor:
    """(B, C, H, W) raw batch -> float batch the network takes.

    Args:
        inputs: uint8/uint16 images, or modality values (HU) when
            ``windows`` is set; C input channels (e.g. adjacent slices).
        windows: ``[(center, width), ...]``: every input channel becomes
            ``len(windows)`` channels in [0, 1], ordered channel-major
            (slice 0 through each window, then slice 1, ...).
        mean, std: per output channel, on the 0..255 scale for images or the
            windowed [0, 1] scale for CT; ``None`` leaves values as they are.

    Returns:
        float32 (B, C', H, W).
    """
    inputs = inputs.float()
    if windows:
        b, c, h, w = inputs.shape
        inputs = apply_windows(inputs, windows, axis=2).reshape(
            b, c * len(windows), h, w)
    if mean is not None:
        mean = torch.as_tensor(mean, dtype=inputs.dtype,
                               device=inputs.device).view(-1, 1, 1)
        std = torch.as_tensor(std, dtype=inputs.dtype,
                              device=inputs.device).view(-1, 1, 1)
        if inputs.shape[1] != mean.shape[0]:
            raise ValueError(
                f'the preprocessing has {mean.shape[0]} mean values but the '
                f'inputs have {inputs.shape[1]} channels (after windowing); '
                'make mean/std one value per channel')
        inputs = (inputs - mean) / std
    return inputs


def pad_to_multiple(inputs: torch.Tensor, divisor: int,
                    shape: Sequence[int] | None = None,
                    value: float = 0.0) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom and right (pixel coordinates do not
    move) to ``shape`` (H, W) or, by default, to the next multiple of
    ``divisor``."""
    height, width = inputs.shape[-2:]
    if shape is None:
        divisor = max(int(divisor), 1)
        shape = (-(-height // divisor) * divisor, -(-width // divisor) *
                 divisor)
    pad_h, pad_w = int(shape[0]) - height, int(shape[1]) - width
    if pad_h == 0 and pad_w == 0:
        return inputs
    return torch.nn.functional.pad(inputs, (0, pad_w, 0, pad_h), value=value)
