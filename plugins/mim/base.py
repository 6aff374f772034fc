"""What MAE and FCMAE share: the mmengine ``BaseModel`` modes, held-out
masked-patch loss with fixed masks, reconstructions for pictures, and the
``pretrained_cfg`` that travels with the weights."""
from __future__ import annotations

import torch
from mmengine.model import BaseModel

from perception.models import build_data_preprocessor
from perception.registry import MODELS
from perception.structures import DataSample
from perception_mim.masking import masked_patch_loss, patch_targets, sample_generators, unpatchify


class MaskedImageModel(BaseModel):
    """Base of masked-image pretraining models.

    Subclasses build ``self.backbone`` (a core backbone) and implement
    :meth:`predict_patches`.

    Args:
        backbone: config (or module) of the core backbone, built from
            ``MODELS``.
        mask_ratio: fraction of patches hidden from the encoder.
        norm_pix_loss: regress per-patch normalised pixels (MAE's choice).
        eval_mask_seed: seed of the fixed masks used in ``predict`` mode
            (held-out loss comparable across evaluations).
        input_size: (height, width) recorded in ``pretrained_cfg``
            (default: the backbone's ``img_size``).
        data_preprocessor: config of the core ``PerceptionDataPreprocessor``
            (mean/std, CT ``windows``, ``channel_meaning``).
    """

    def __init__(self, backbone: dict | torch.nn.Module,
                 mask_ratio: float = 0.75, norm_pix_loss: bool = True,
                 eval_mask_seed: int = 0, input_size=None,
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(
            data_preprocessor=build_data_preprocessor(data_preprocessor),
            init_cfg=init_cfg)
        self.backbone = (MODELS.build(backbone) if isinstance(backbone, dict)
                         else backbone)
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f'mask_ratio must be in (0, 1), got {mask_ratio}')
        self.mask_ratio = float(mask_ratio)
        self.norm_pix_loss = norm_pix_loss
        self.eval_mask_seed = int(eval_mask_seed)
        size = input_size or getattr(self.backbone, 'img_size', 224)
        self.input_size = [size, size] if isinstance(size, int) else list(size)

    # -- to implement ------------------------------------------------------
    patch_size: int = 16

    def predict_patches(self, images: torch.Tensor,
                        generators: list[torch.Generator] | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> predicted patches (B, N, p*p*C) and the mask
        (B, N), 1 = masked."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------
    def _check(self, images: torch.Tensor) -> None:
        if images.ndim != 4:
            raise ValueError(f'{type(self).__name__} expects (B, C, H, W) '
                             f'inputs, got shape {tuple(images.shape)}')
        C, H, W = images.shape[1:]
        if C != self.backbone.in_chans:
            raise ValueError(
                f'{type(self).__name__}: the inputs have {C} channels but the '
                f'backbone was built with in_chans={self.backbone.in_chans}; '
                'set model.backbone.in_chans (or the data windows) to match')
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(
                f'{type(self).__name__}: input size {H}x{W} is not a multiple '
                f'of the patch size {self.patch_size}; resize/crop to one')

    def loss(self, images: torch.Tensor, generators=None,
             reduce: bool = True) -> torch.Tensor:
        """Masked-patch loss of a normalized batch (B, C, H, W)."""
        self._check(images)
        pred, mask = self.predict_patches(images, generators)
        target = patch_targets(images, self.patch_size, self.norm_pix_loss)
        return masked_patch_loss(pred, target, mask, reduce=reduce)

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor'):
        """Args:
            inputs (Tensor): (B, C, H, W), output of the data preprocessor.
            mode: 'loss' -> ``{'loss': scalar}``; 'predict' -> data samples
                with ``masked_patch_loss`` (fixed masks) for the held-out
                metric; 'tensor' -> (predicted patches, mask).
        """
        if mode == 'loss':
            return {'loss': self.loss(inputs)}
        if mode == 'predict':
            samples = list(data_samples or [DataSample() for _ in inputs])
            gens = sample_generators(self.eval_mask_seed, samples)
            losses = self.loss(inputs, gens, reduce=False).detach().cpu()
            baseline = self._mean_baseline(inputs, gens).cpu()
            for sample, loss, base in zip(samples, losses, baseline):
                sample.set_field(float(loss), 'masked_patch_loss',
                                 field_type='metainfo')
                sample.set_field(float(base), 'mean_patch_loss',
                                 field_type='metainfo')
            return samples
        if mode == 'tensor':
            self._check(inputs)
            return self.predict_patches(inputs)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got "
                         f'{mode!r}')

    @torch.no_grad()
    def _mean_baseline(self, images, generators) -> torch.Tensor:
        """Loss of predicting each masked patch's own mean (1.0 for
        normalized targets, up to eps): the bar to beat."""
        from perception_mim.masking import random_masking
        target = patch_targets(images, self.patch_size, self.norm_pix_loss)
        pred = target.mean(dim=-1, keepdim=True).expand_as(target)
        B, N = target.shape[:2]
        _, mask, _ = random_masking(B, N, self.mask_ratio, images.device,
                                    generators)
        return masked_patch_loss(pred, target, mask, reduce=False)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, seed: int = 0
                    ) -> dict[str, torch.Tensor]:
        """Reconstruction for pictures, in the preprocessed space.

        Returns:
            dict with ``reconstruction`` (B, C, H, W) (normalized-pixel
            predictions mapped back with each patch's true mean/std, as MAE's
            visualisation does), ``mask`` (B, 1, H, W), 1 = masked.
        """
        self._check(images)
        gens = [torch.Generator().manual_seed(seed + i)
                for i in range(images.shape[0])]
        pred, mask = self.predict_patches(images, gens)
        pred = pred.float()
        p = self.patch_size
        if self.norm_pix_loss:
            from perception_mim.masking import patchify
            target = patchify(images.float(), p)
            mean = target.mean(-1, keepdim=True)
            std = (target.var(-1, keepdim=True) + 1e-6) ** 0.5
            pred = pred * std + mean
        grid = (images.shape[2] // p, images.shape[3] // p)
        C = images.shape[1]
        recon = unpatchify(pred, p, grid, C)
        mask_img = unpatchify(mask[..., None].expand(-1, -1, p * p).float(),
                              p, grid, 1)
        return dict(reconstruction=recon, mask=mask_img)

    def architecture_cfg(self) -> dict:
        """This model's part of :class:`~perception.data.PretrainedCfg`
        (the encoder's timm name and arguments, the input size)."""
        bb = self.backbone
        return dict(architecture=bb.timm_name,
                    input_size=[bb.in_chans, *self.input_size],
                    in_chans=bb.in_chans, model_args=dict(bb.model_args),
                    num_classes=0, pretraining=type(self).__name__)
