"""The :class:`Detector` assembly: backbone -> neck -> head, with a data
preprocessor that pads mixed-size batches to a stride multiple, normalizes
and (for CT) windows modality values into channels.

The detector only wires; the head computes losses and decodes (mmdet's
habit). ``mode='tensor'`` returns what ONNX export takes: decoded boxes
(B, N, 4) xyxy in input pixels and per-class scores (B, N, C), no NMS.
``mode='predict'`` thresholds, runs class-aware NMS and maps the boxes back
to the source image through what the transforms recorded
(:func:`perception.data.boxes_to_source`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseModel

from perception.data.geometry import PRED_SPACE_KEY, boxes_to_source, sample_meta
from perception.errors import UserError
from perception.models.data_preprocessor import build_data_preprocessor
from perception.registry import MODELS
from perception.structures import DataSample


class DetectorConfigError(UserError, ValueError):
    """A detector config contradicts itself (classes vs. the head)."""


@MODELS.register_module()
class Detector(BaseModel):
    """A one-stage detector.

    Args:
        backbone: config of a backbone returning a tuple of maps (the core
            ``VisionTransformer``, ``ConvNeXt`` or ``TimmBackbone``).
        neck: config of a neck (``SimpleFPN``, ``FPN``, ``PAFPN``) turning
            them into a pyramid.
        head: config of a dense head (``num_classes`` is filled from
            ``class_names`` when missing).
        class_names: names of the labels, recorded in the PretrainedCfg; their
            number must equal the head's ``num_classes``.
        data_preprocessor: config of the preprocessor; detection configs
            set ``pad_size_divisor`` (32 for strides up to 32).
        init_cfg: mmengine init config of the whole model.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 class_names: Sequence[str] = (),
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(
            data_preprocessor=build_data_preprocessor(data_preprocessor),
            init_cfg=init_cfg)
        head = dict(head)
        self.class_names = list(class_names)
        if self.class_names:
            head.setdefault('num_classes', len(self.class_names))
            if head['num_classes'] != len(self.class_names):
                raise DetectorConfigError(
                    f"Detector: head.num_classes={head['num_classes']} but "
                    f'{len(self.class_names)} class_names '
                    f'({", ".join(self.class_names)}); make them agree (or '
                    'drop head.num_classes)')
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)

    @property
    def num_classes(self) -> int:
        return int(self.head.num_classes)

    def extract_feat(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args: inputs (Tensor): (B, C, H, W) preprocessed batch.
        Returns: the neck's pyramid, one (B, D, H/s, W/s) map per stride."""
        return self.neck(self.backbone(inputs))

    def forward(self, inputs: torch.Tensor,
                data_samples: Sequence[DataSample] | None = None,
                mode: str = 'tensor'):
        """``loss``: dict of losses; ``tensor``: (boxes (B, N, 4), scores
        (B, N, C)); ``predict``: data samples with ``pred_instances`` in
        source-image coordinates."""
        if mode == 'loss':
            return self.head.loss(self.extract_feat(inputs), data_samples)
        if mode == 'tensor':
            return self.head.predict_raw(self.extract_feat(inputs))
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'tensor' or 'predict', got "
                         f'{mode!r}')

    def predict(self, inputs: torch.Tensor,
                data_samples: Sequence[DataSample] | None = None,
                score_thr: float | None = None) -> list[DataSample]:
        """Detections per image, boxes mapped back to the source image and
        clipped to it (``ori_shape``)."""
        boxes, scores = self.head.predict_raw(self.extract_feat(inputs))
        results = self.head.postprocess(boxes, scores, score_thr=score_thr)
        samples = list(data_samples) if data_samples is not None else [
            DataSample() for _ in results]
        for sample, instances in zip(samples, results):
            source = boxes_to_source(sample, instances.bboxes)
            shape = sample_meta(sample, 'ori_shape') or sample_meta(
                sample, 'img_shape')
            source = torch.from_numpy(source).to(instances.bboxes.device)
            if shape is not None:
                source[:, 0::2] = source[:, 0::2].clamp(0, shape[1])
                source[:, 1::2] = source[:, 1::2].clamp(0, shape[0])
            instances.bboxes = source
            sample.pred_instances = instances
            sample.set_metainfo({PRED_SPACE_KEY: 'source'})
        return samples

    def architecture_cfg(self) -> dict:
        """This model's part of :class:`~perception.data.PretrainedCfg`."""
        backbone = self.backbone
        cfg = dict(num_classes=self.num_classes,
                   class_names=list(self.class_names),
                   extra=dict(task='detection',
                              detector=type(self.head).__name__))
        if hasattr(backbone, 'timm_name'):
            cfg['architecture'] = backbone.timm_name
        if hasattr(backbone, 'model_args'):
            cfg['model_args'] = dict(backbone.model_args)
        if hasattr(backbone, 'in_chans'):
            cfg['in_chans'] = backbone.in_chans
        return cfg
