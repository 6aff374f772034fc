"""``perception test CONFIG BUNDLE --backend onnxruntime``: the config's
evaluator on the exported model, so the metric a user sees is that of what
ships.

:class:`BackendDetector` is an mmengine ``BaseModel`` over a backend: its
data preprocessor is built from the bundle's own PretrainedCfg (mean/std or
CT windows, padding: what the graph was exported for), and ``predict``
takes that preprocessor's output and returns DataSamples with
``pred_instances`` in source pixels, as :meth:`Detector.predict` does. The
test run swaps it in for the config's model (no checkpoint is loaded).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.model import BaseModel

from perception.deploy.predictor import Predictor, load_predictor
from perception.models.data_preprocessor import PerceptionDataPreprocessor
from perception.structures import DataSample

__all__ = ['BackendDetector', 'backend_model']


class BackendDetector(BaseModel):
    """A detector whose forward pass runs on a :class:`Predictor`'s backend.

    Args:
        predictor: the loaded predictor (bundle + backend + settings).
    """

    def __init__(self, predictor: Predictor) -> None:
        cfg = predictor.pretrained_cfg
        super().__init__(data_preprocessor=PerceptionDataPreprocessor(
            mean=cfg.mean, std=cfg.std, windows=cfg.windows or None,
            pad_size_divisor=cfg.pad_size_divisor))
        self.predictor = predictor
        self.class_names = list(cfg.class_names)

    def forward(self, inputs: torch.Tensor,
                data_samples: Sequence[DataSample] | None = None,
                mode: str = 'predict') -> Any:
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.predictor.backend.run(inputs)
        raise ValueError(f"{self.predictor.backend.name} model: mode must be "
                         f"'predict' or 'tensor' (no training), got {mode!r}")

    def predict(self, inputs: torch.Tensor,
                data_samples: Sequence[DataSample] | None = None
                ) -> list[DataSample]:
        """Args: inputs (Tensor): (B, C, H, W), the data preprocessor's
        output. Returns the samples with ``pred_instances`` in source
        pixels."""
        samples = list(data_samples) if data_samples is not None else [
            DataSample(metainfo=dict(img_shape=tuple(inputs.shape[-2:])))
            for _ in range(inputs.shape[0])]
        return self.predictor.detect(list(inputs), samples)


def backend_model(model: str, backend: str, **options: Any) -> BackendDetector:
    """:class:`BackendDetector` of a bundle / .onnx on ``backend``."""
    return BackendDetector(load_predictor(model, backend, **options))
