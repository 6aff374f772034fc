"""FCMAE: fully convolutional masked autoencoder (Woo et al. 2023,
"ConvNeXt V2: Co-designing and Scaling ConvNets with Masked Autoencoders")
on the core :class:`ConvNeXt`.

ConvNeXt V2 runs the encoder with sparse convolutions so hidden pixels never
reach a visible position. Here the encoder is dense and gives the same
result: every input of a spatial operation (depth-wise conv, global
response norm) and every block output is multiplied by the visible-mask at
that resolution, so a visible position only ever sees visible values and
hidden positions stay zero, as a sparse tensor would have them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers.grn import GlobalResponseNorm
from timm.models.convnext import ConvNeXtBlock
from torch import nn

from perception.registry import MODELS
from perception_mim.base import MaskedImageModel
from perception_mim.masking import random_masking


@MODELS.register_module()
class FCMAE(MaskedImageModel):
    """Masked pretraining of the core ``ConvNeXt`` (best with version 2).

    Args:
        backbone: config of the core ``ConvNeXt``.
        decoder: ``dict(embed_dim=256, depth=1)``: ConvNeXt blocks after a
            1x1 projection, mask tokens at hidden positions.
        mask_ratio: 0.6 as in ConvNeXt V2; patches are the backbone's total
            stride (32 px), so masks align with every stage.
        norm_pix_loss, eval_mask_seed, input_size, data_preprocessor: see
            :class:`MaskedImageModel`.
    """

    def __init__(self, backbone: dict, decoder: dict | None = None,
                 mask_ratio: float = 0.6, **kwargs) -> None:
        super().__init__(backbone, mask_ratio=mask_ratio, **kwargs)
        bb = self.backbone
        if not hasattr(bb, 'stages'):
            raise TypeError('FCMAE needs the core ConvNeXt backbone '
                            f'(type=ConvNeXt), got {type(bb).__name__}')
        self.patch_size = 2 ** (len(bb.stages) + 1)  # stem 4, then 2 per stage
        dec = dict(dict(embed_dim=256, depth=1), **(decoder or {}))
        dim = dec['embed_dim']
        self.proj = nn.Conv2d(bb.num_features, dim, kernel_size=1)
        self.mask_token = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.decoder = nn.Sequential(*[
            ConvNeXtBlock(dim, ls_init_value=None, conv_mlp=True, use_grn=True)
            for _ in range(dec['depth'])])
        self.pred = nn.Conv2d(dim, self.patch_size ** 2 * bb.in_chans, 1)
        nn.init.normal_(self.mask_token, std=0.02)
        self._visible: dict[tuple[int, int], torch.Tensor] | None = None
        for module in bb.modules():
            if isinstance(module, ConvNeXtBlock):
                module.conv_dw.register_forward_pre_hook(self._mask_nchw)
            elif isinstance(module, GlobalResponseNorm):
                module.register_forward_pre_hook(self._mask_grn)

    # hooks: active only while encode() runs with a mask
    def _visible_at(self, h: int, w: int) -> torch.Tensor | None:
        if self._visible is None:
            return None
        if (h, w) not in self._visible:
            coarse = next(iter(self._visible.values()))
            self._visible[(h, w)] = F.interpolate(coarse, size=(h, w),
                                                  mode='nearest')
        return self._visible[(h, w)]

    def _mask_nchw(self, module, args):
        x = args[0]
        keep = self._visible_at(*x.shape[-2:])
        return None if keep is None else (x * keep.to(x.dtype), )

    def _mask_grn(self, module, args):
        x = args[0]
        if module.channel_dim == -1:  # (B, H, W, C)
            keep = self._visible_at(*x.shape[1:3])
            return None if keep is None else (
                x * keep.permute(0, 2, 3, 1).to(x.dtype), )
        return self._mask_nchw(module, args)

    def encode(self, images: torch.Tensor,
               generators: list[torch.Generator] | None = None,
               mask: torch.Tensor | None = None):
        """Encoder with hidden patches zeroed at every stage.

        Args:
            images (Tensor): (B, C, H, W), H and W multiples of 32.
            generators: per-sample mask generators (fixed masks).
            mask (Tensor): (B, N) given mask, 1 = hidden (else random).

        Returns:
            features (B, C, H/32, W/32) (zero at hidden positions) and the
            mask (B, N), 1 = hidden.
        """
        B, _, H, W = images.shape
        rows, cols = H // self.patch_size, W // self.patch_size
        if mask is None:
            _, mask, _ = random_masking(B, rows * cols, self.mask_ratio,
                                        images.device, generators)
        visible = (1 - mask).reshape(B, 1, rows, cols)
        self._visible = {(rows, cols): visible}
        bb = self.backbone
        try:
            x = bb.stem(images)
            x = x * self._visible_at(*x.shape[-2:]).to(x.dtype)
            for stage in bb.stages:
                x = stage.downsample(x)
                keep = self._visible_at(*x.shape[-2:]).to(x.dtype)
                x = x * keep
                for block in stage.blocks:
                    x = block(x) * keep
        finally:
            self._visible = None
        return x, mask

    def predict_patches(self, images, generators=None):
        x, mask = self.encode(images, generators)
        B, _, rows, cols = x.shape
        hidden = mask.reshape(B, 1, rows, cols).to(x.dtype)
        x = self.proj(x)
        x = x * (1 - hidden) + self.mask_token.to(x.dtype) * hidden
        x = self.pred(self.decoder(x))
        return x.flatten(2).transpose(1, 2), mask
