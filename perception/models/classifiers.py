"""The :class:`Classifier` assembly on the project's backbones: backbone ->
(neck) -> global average pool of the last map -> classification head (a
linear probe or an MLP). Plain timm models keep
:class:`~perception.models.classifier.TimmClassifier`.

``mode='tensor'`` returns logits (B, C) (what export takes);
``mode='predict'`` sets ``pred_score`` (softmax) and ``pred_label``. A
linear probe freezes the backbone (``frozen_stages='all'``) and uses
``LinearClsHead(norm='BN')``, MAE's recipe.
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseModel

# the losses register the default this model builds
import perception.models.losses  # noqa: F401
from perception.models._assembly import architecture_cfg, head_with_classes
from perception.models.data_preprocessor import build_data_preprocessor
from perception.registry import MODELS
from perception.structures import DataSample


@MODELS.register_module()
class Classifier(BaseModel):
    """An image classifier.

    Args:
        backbone: config of a backbone returning a tuple of maps.
        head: config of ``LinearClsHead`` or ``MLPClsHead``
            (``num_classes`` filled from ``class_names``, ``in_channels``
            the last map's channels).
        neck: optional neck; its last level is pooled.
        class_names: names of the labels, recorded in the PretrainedCfg.
        loss: config of the loss (cross-entropy; samples labelled 255 are
            ignored).
        data_preprocessor: config of the preprocessor.
        init_cfg: mmengine init config of the whole model.
    """

    def __init__(self, backbone: dict, head: dict, neck: dict | None = None,
                 class_names: Sequence[str] = (),
                 loss: dict = dict(type='CrossEntropyLoss'),
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(
            data_preprocessor=build_data_preprocessor(data_preprocessor),
            init_cfg=init_cfg)
        self.class_names = list(class_names)
        head = head_with_classes('Classifier', head, self.class_names)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        self.loss_fn = MODELS.build(dict(loss))

    @property
    def num_classes(self) -> int:
        return int(self.head.num_classes)

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Args: inputs (Tensor): (B, C, H, W). Returns: (B, D) pooled
        features of the last map."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return feats[-1].mean(dim=(2, 3))

    def forward(self, inputs: torch.Tensor,
                data_samples: Sequence[DataSample] | None = None,
                mode: str = 'tensor'):
        """``loss``: ``{'loss_cls'}``; ``tensor``: logits (B, C);
        ``predict``: data samples with ``pred_score`` / ``pred_label``."""
        logits = self.head(self.extract_feat(inputs))
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            labels = torch.cat([s.gt_label for s in data_samples])
            return {'loss_cls': self.loss_fn(logits, labels.to(
                logits.device))}
        if mode == 'predict':
            scores = logits.float().softmax(-1).detach().cpu()
            samples = list(data_samples) if data_samples is not None else [
                DataSample() for _ in scores]
            return [s.set_pred_score(p) for s, p in zip(samples, scores)]
        raise ValueError(f"mode must be 'loss', 'tensor' or 'predict', got "
                         f'{mode!r}')

    def architecture_cfg(self) -> dict:
        """This model's part of :class:`~perception.data.PretrainedCfg`."""
        return architecture_cfg(self.backbone, self.num_classes,
                                self.class_names, 'classification', self.head)
