"""The :class:`Segmentor` assembly: backbone -> (neck) -> segmentation head,
with a data preprocessor that pads mixed-size batches to a stride multiple
and normalizes.

``mode='tensor'`` returns what ONNX export takes: per-class logits
(B, C, H, W) at the input size. ``mode='predict'`` maps the logits back to
each source image through what the transforms recorded
(:func:`perception.data.seg_to_source`: bilinear, then arg-max) and sets
``pred_sem_seg`` (1, H0, W0) int64 in source pixels.
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from perception.data.geometry import PRED_SPACE_KEY
from perception.data.seg_geometry import seg_to_source
from perception.models._assembly import architecture_cfg, head_with_classes
from perception.models.data_preprocessor import build_data_preprocessor
from perception.registry import MODELS
from perception.structures import DataSample


@MODELS.register_module()
class Segmentor(BaseModel):
    """A semantic segmentation model.

    Args:
        backbone: config of a backbone returning a tuple of maps (the core
            ``VisionTransformer``, ``ConvNeXt`` or ``TimmBackbone``).
        head: config of a segmentation head (``FPNSegHead``);
            ``num_classes`` is filled from ``class_names``.
        neck: optional neck (``SimpleFPN``, ``FPN``) between them.
        class_names: names of the labels, recorded in the PretrainedCfg.
        keep_logits: ``predict`` also stores ``seg_logits`` (C, H0, W0)
            (memory: C floats per source pixel).
        data_preprocessor: config of the preprocessor; set
            ``pad_size_divisor`` to the backbone's largest stride.
        init_cfg: mmengine init config of the whole model.
    """

    def __init__(self, backbone: dict, head: dict, neck: dict | None = None,
                 class_names: Sequence[str] = (), keep_logits: bool = False,
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(
            data_preprocessor=build_data_preprocessor(data_preprocessor),
            init_cfg=init_cfg)
        self.class_names = list(class_names)
        head = head_with_classes('Segmentor', head, self.class_names)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        self.keep_logits = keep_logits

    @property
    def num_classes(self) -> int:
        return int(self.head.num_classes)

    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args: inputs (Tensor): (B, C, H, W) preprocessed batch.
        Returns: the maps the head decodes, finest first."""
        feats = self.backbone(inputs)
        return self.neck(feats) if self.neck is not None else feats

    def forward(self, inputs: torch.Tensor,
                data_samples: Sequence[DataSample] | None = None,
                mode: str = 'tensor'):
        """``loss``: dict of losses; ``tensor``: logits (B, C, H, W) at the
        input size; ``predict``: data samples with ``pred_sem_seg`` in
        source-image pixels."""
        size = inputs.shape[-2:]
        if mode == 'loss':
            return self.head.loss(self.extract_feat(inputs), data_samples,
                                  size)
        if mode == 'tensor':
            return self.head.logits(self.extract_feat(inputs), size)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'tensor' or 'predict', got "
                         f'{mode!r}')

    def predict(self, inputs: torch.Tensor,
                data_samples: Sequence[DataSample] | None = None
                ) -> list[DataSample]:
        """Per-pixel classes of every source image (``ori_shape``)."""
        logits = self.head.logits(self.extract_feat(inputs),
                                  inputs.shape[-2:]).float()
        samples = list(data_samples) if data_samples is not None else [
            DataSample() for _ in logits]
        for sample, scores in zip(samples, logits):
            source = seg_to_source(sample, scores)
            sample.pred_sem_seg = PixelData(
                data=source.argmax(0, keepdim=True).cpu())
            if self.keep_logits:
                sample.seg_logits = PixelData(data=source.cpu())
            sample.set_metainfo({PRED_SPACE_KEY: 'source'})
        return samples

    def architecture_cfg(self) -> dict:
        """This model's part of :class:`~perception.data.PretrainedCfg`."""
        return architecture_cfg(self.backbone, self.num_classes,
                                self.class_names, 'segmentation', self.head)
