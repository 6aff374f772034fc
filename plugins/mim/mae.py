"""MAE: masked autoencoders (He et al. 2021, "Masked Autoencoders Are
Scalable Vision Learners"), with the core ViT as the encoder."""
from __future__ import annotations

import torch
from timm.models.vision_transformer import Block
from torch import nn

from perception.models.backbones import Attention, sincos_pos_embed
from perception.registry import MODELS
from perception_mim.base import MaskedImageModel
from perception_mim.masking import random_masking


class MAEDecoder(nn.Module):
    """Light transformer decoder: visible tokens plus mask tokens, fixed
    sin-cos positions (recomputed for any grid), pixels per patch out.

    Args:
        in_dim: encoder width.
        embed_dim, depth, num_heads, mlp_ratio: decoder transformer.
        patch_size, in_chans: size of the predicted patch (p * p * C).
    """

    def __init__(self, in_dim: int, embed_dim: int = 128, depth: int = 4,
                 num_heads: int = 4, mlp_ratio: float = 4.0,
                 patch_size: int = 16, in_chans: int = 3) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.decoder_embed = nn.Linear(in_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = nn.Sequential(*[
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True,
                  attn_layer=Attention)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.pred = nn.Linear(embed_dim, patch_size * patch_size * in_chans)
        self._pos_cache: dict[tuple[int, int], torch.Tensor] = {}
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(_init_mae)

    def pos_embed(self, grid: tuple[int, int], like: torch.Tensor
                  ) -> torch.Tensor:
        if grid not in self._pos_cache:
            self._pos_cache[grid] = sincos_pos_embed(self.embed_dim, grid)
        return self._pos_cache[grid].to(like)

    def forward(self, x: torch.Tensor, ids_shuffle: torch.Tensor,
                grid: tuple[int, int]) -> torch.Tensor:
        """Args:
            x (Tensor): (B, 1 + keep, in_dim) encoder output (class first).
            ids_shuffle (Tensor): (B, N), kept patch ids first.
        Returns: (B, N, p*p*C) predictions in patch order."""
        x = self.decoder_embed(x)
        B, n_vis, D = x.shape
        N = ids_shuffle.shape[1]
        tokens = torch.cat([x[:, 1:], self.mask_token.expand(
            B, N - (n_vis - 1), -1)], dim=1)
        # put tokens back into patch order
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        tokens = torch.gather(tokens, 1,
                              ids_restore[..., None].expand(-1, -1, D))
        x = torch.cat([x[:, :1], tokens], dim=1) + self.pos_embed(grid, x)
        x = self.norm(self.blocks(x))
        return self.pred(x[:, 1:])


def _init_mae(module: nn.Module) -> None:
    # MAE's init: xavier-uniform linears, zero biases, unit layer norms
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@MODELS.register_module()
class MAE(MaskedImageModel):
    """Masked autoencoder on the core :class:`VisionTransformer`.

    The encoder sees only the visible patches (``round(N * (1 - ratio))``
    per sample, exactly); the decoder fills in mask tokens; the loss covers
    masked patches only. Attention runs through timm's blocks, i.e.
    ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        backbone: config of the core ``VisionTransformer``.
        decoder: ``dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4)``.
        mask_ratio, norm_pix_loss, eval_mask_seed, input_size,
            data_preprocessor: see :class:`MaskedImageModel`.

    Example:
        >>> model = MODELS.build(dict(type='MAE', backbone=dict(
        ...     type='VisionTransformer', arch='tiny', img_size=224)))
        >>> model(images, mode='loss')   # {'loss': tensor(...)}
    """

    def __init__(self, backbone: dict, decoder: dict | None = None,
                 **kwargs) -> None:
        super().__init__(backbone, **kwargs)
        bb = self.backbone
        if not hasattr(bb, 'grid_pos_embed'):
            raise TypeError('MAE needs the core VisionTransformer backbone '
                            f'(type=VisionTransformer), got {type(bb).__name__}')
        self.patch_size = bb.patch_size
        self.decoder = MAEDecoder(bb.embed_dim, patch_size=bb.patch_size,
                                  in_chans=bb.in_chans, **(decoder or {}))

    def encode(self, images: torch.Tensor,
               generators: list[torch.Generator] | None = None):
        """Encoder on visible patches only.

        Returns:
            tokens (B, 1 + keep, D), ids_shuffle (B, N), mask (B, N),
            grid (rows, cols).
        """
        bb = self.backbone
        x = bb.patch_embed(images)            # (B, rows, cols, D)
        B, rows, cols, D = x.shape
        pos = bb.grid_pos_embed((rows, cols))
        x = x.reshape(B, rows * cols, D) + pos[:, 1:]
        ids_shuffle, mask, keep = random_masking(
            B, rows * cols, self.mask_ratio, x.device, generators)
        x = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, D))
        cls = (bb.cls_token + pos[:, :1]).expand(B, -1, -1)
        x = bb.norm_pre(torch.cat([cls, x], dim=1))
        x = bb.norm(bb.blocks(x))
        return x, ids_shuffle, mask, (rows, cols)

    def predict_patches(self, images, generators=None):
        tokens, ids_shuffle, mask, grid = self.encode(images, generators)
        return self.decoder(tokens, ids_shuffle, grid), mask
