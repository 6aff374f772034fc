"""``TimmClassifier``: any timm model as an mmengine ``BaseModel``."""
from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from perception.models.data_preprocessor import build_data_preprocessor
from perception.registry import MODELS
from perception.structures import DataSample


@MODELS.register_module()
class TimmClassifier(BaseModel):
    """Image classifier built with ``timm.create_model``.

    Args:
        model_name: a timm model name, e.g. ``'resnet10t'``.
        num_classes: number of classes.
        in_chans: input channels.
        data_preprocessor: config of the preprocessor (normalization).
        **timm_kwargs: passed to ``timm.create_model`` (never downloads:
            ``pretrained`` is refused; load weights with ``init_cfg``).
    """

    def __init__(self, model_name: str, num_classes: int, in_chans: int = 3,
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None, **timm_kwargs) -> None:
        if timm_kwargs.pop('pretrained', False):
            raise ValueError('TimmClassifier never downloads weights; use '
                             "init_cfg=dict(type='Pretrained', checkpoint=...)")
        super().__init__(
            data_preprocessor=build_data_preprocessor(data_preprocessor),
                         init_cfg=init_cfg)
        self.model_name = model_name
        self.in_chans = in_chans
        self.net = timm.create_model(model_name, pretrained=False,
                                     num_classes=num_classes,
                                     in_chans=in_chans, **timm_kwargs)

    def architecture_cfg(self) -> dict:
        """This model's part of :class:`~perception.data.PretrainedCfg`."""
        return dict(architecture=self.model_name, in_chans=self.in_chans,
                    num_classes=self.net.num_classes)

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor'):
        """Args: inputs (Tensor): (B, C, H, W), output of the preprocessor."""
        logits = self.net(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            labels = torch.cat([s.gt_label for s in data_samples])
            return {'loss': F.cross_entropy(logits.float(),
                                            labels.to(logits.device))}
        if mode == 'predict':
            scores = logits.float().softmax(-1).detach().cpu()
            samples = data_samples or [DataSample() for _ in scores]
            return [s.set_pred_score(p) for s, p in zip(samples, scores)]
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got "
                         f'{mode!r}')
