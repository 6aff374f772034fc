"""Data preprocessor: batch, window (CT), normalize. Its settings are the
preprocessing half of :class:`~perception.data.PretrainedCfg` and travel
with the weights."""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from perception.data.normalize import normalize_inputs, pad_to_multiple
from perception.registry import MODELS


@MODELS.register_module()
class PerceptionDataPreprocessor(BaseDataPreprocessor):
    """Stack ``inputs`` into (B, C, H, W) float, optionally window modality
    values into channels, then normalize.

    Args:
        mean: per-channel mean on the 0..255 scale for uint8 images, or on
            the windowed [0, 1] scale when ``windows`` is set.
        std: per-channel std, same scale as ``mean``.
        windows: ``[(center, width), ...]``: inputs are modality values
            (HU), one channel per slice; every slice goes through every
            window, giving ``slices x windows`` channels in [0, 1].
        channel_meaning: names of the channels (e.g. ``['lung', 'bone']``),
            recorded in ``pretrained_cfg``.
        pad_size_divisor: pad the batch (bottom and right, with zeros after
            normalization) to the largest image rounded up to a multiple of
            this; images of different sizes are then batched (detection).
            Samples get ``batch_input_shape`` (H, W) of the padded batch.
    """

    def __init__(self, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None,
                 windows: Sequence[Sequence[float]] | None = None,
                 channel_meaning: Sequence[str] | None = None,
                 pad_size_divisor: int = 1,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        self.pad_size_divisor = int(pad_size_divisor)
        self.windows = [tuple(map(float, w)) for w in windows or []]
        self.channel_meaning = list(channel_meaning or [])
        self._normalize = mean is not None
        if self._normalize:
            if std is None or len(std) != len(mean):
                raise ValueError('data_preprocessor: mean and std must have '
                                 f'the same length, got {mean} and {std}')
            self._mean_std = ([float(v) for v in mean],
                              [float(v) for v in std])
            self.register_buffer('mean', torch.tensor(mean).view(-1, 1, 1),
                                 False)
            self.register_buffer('std', torch.tensor(std).view(-1, 1, 1),
                                 False)

    def preprocess(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) raw batch -> normalized float batch (every input
        channel through every window, then mean/std)."""
        return normalize_inputs(inputs, self.windows,
                                self.mean if self._normalize else None,
                                self.std if self._normalize else None)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        samples = data.get('data_samples')
        if not isinstance(inputs, torch.Tensor) and \
                len({tuple(image.shape) for image in inputs}) == 1:
            inputs = torch.stack(list(inputs))  # one size: one batch op
        if isinstance(inputs, torch.Tensor):
            batch = pad_to_multiple(self.preprocess(inputs),
                                    self.pad_size_divisor)
        else:
            images = [self.preprocess(image[None]) for image in inputs]
            height = max(image.shape[-2] for image in images)
            width = max(image.shape[-1] for image in images)
            shape = pad_to_multiple(torch.empty(0, 0, height, width),
                                    self.pad_size_divisor).shape[-2:]
            batch = torch.cat([pad_to_multiple(image, 1, shape)
                               for image in images])
        if samples is not None and self.pad_size_divisor > 1:
            for sample in samples:
                sample.set_metainfo(dict(
                    batch_input_shape=tuple(batch.shape[-2:])))
        return dict(inputs=batch, data_samples=samples)

    def preprocessing_cfg(self) -> dict:
        """This preprocessor's part of :class:`~perception.data.PretrainedCfg`
        (mean, std, windows, channel meaning)."""
        cfg: dict = {}
        if self._normalize:
            cfg['mean'], cfg['std'] = (list(v) for v in self._mean_std)
        if self.windows:
            cfg['windows'] = [list(w) for w in self.windows]
        if self.channel_meaning:
            cfg['channel_meaning'] = list(self.channel_meaning)
        if self.pad_size_divisor > 1:
            cfg['pad_size_divisor'] = self.pad_size_divisor
        return cfg


def build_data_preprocessor(cfg: dict | torch.nn.Module | None
                            ) -> torch.nn.Module:
    """Build a preprocessor through perception's ``MODELS`` (mmengine's
    ``BaseModel`` would look in its own root registry without our scope).
    ``None`` gives a :class:`PerceptionDataPreprocessor` with no
    normalization."""
    if isinstance(cfg, torch.nn.Module):
        return cfg
    cfg = dict(cfg or {})
    cfg.setdefault('type', 'PerceptionDataPreprocessor')
    return MODELS.build(cfg)
