"""MAE: masked autoencoders (He et al. 2021, "Masked Autoencoders Are
Scalable Vision Learners"), with the core ViT as the encoder."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block
from torch import nn

from perception.models.backbones import Attention, sincos_pos_embed
from perception.registry import MODELS
from perception_mim.base import MaskedImageModel
from perception_mim.masking import normalize_patches, random_masking, shuffled_patches


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
        self.in_chans = in_chans
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
                grid: tuple[int, int], masked_only: bool = False
                ) -> torch.Tensor:
        """Args:
            x (Tensor): (B, 1 + keep, in_dim) encoder output (class first).
            ids_shuffle (Tensor): (B, N), kept patch ids first.
            masked_only: predict only the masked patches, in
                ``ids_shuffle[:, keep:]`` order with pixels in (C, p, p)
                order (as :func:`~perception_mim.masking.shuffled_patches`
                gives them): the loss's path, which skips the final norm and
                projection of the visible patches.
        Returns: (B, N, p*p*C) predictions in patch order, pixels (p, p, C)
            (``masked_only``: (B, N - keep, C*p*p))."""
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
        x = self.blocks(x)
        if not masked_only:
            return self.pred(self.norm(x)[:, 1:])
        ids = ids_shuffle[:, n_vis - 1:, None].expand(-1, -1, D)
        x = self.norm(torch.gather(x[:, 1:], 1, ids))
        order = self._cpp_order(x.device)
        return F.linear(x, self.pred.weight[order], self.pred.bias[order])

    def _cpp_order(self, device: torch.device) -> torch.Tensor:
        """Rows of ``pred`` in (C, p, p) pixel order (they are (p, p, C))."""
        C = self.in_chans
        p = int(round((self.pred.out_features // C) ** 0.5))
        order = torch.arange(p * p * C).view(p, p, C).permute(2, 0, 1)
        return order.flatten().to(device)


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
        tokens, ids_shuffle, mask, grid, _ = self._encode(images, generators)
        return tokens, ids_shuffle, mask, grid

    def _encode(self, images, generators):
        """:meth:`encode`, plus every patch's pixels in shuffled order
        (B, N, C*p*p). The patch embedding (a convolution with kernel =
        stride = patch, i.e. one linear map per patch) runs on the visible
        patches only."""
        bb = self.backbone
        p = self.patch_size
        B, _, H, W = images.shape
        rows, cols = H // p, W // p
        ids_shuffle, mask, keep = random_masking(
            B, rows * cols, self.mask_ratio, images.device, generators)
        patches = shuffled_patches(images, p, ids_shuffle)
        ids_keep = ids_shuffle[:, :keep]
        pos = bb.grid_pos_embed((rows, cols))
        proj = bb.patch_embed.proj
        if _per_patch_linear(bb.patch_embed, p):
            x = F.linear(patches[:, :keep],
                         proj.weight.reshape(proj.out_channels, -1),
                         proj.bias)
            x = bb.patch_embed.norm(x)
            x = x + pos[0, 1:][ids_keep]
        else:   # a patch embedding of another kind: on all, then kept
            x = bb.patch_embed(images)                    # (B, rows, cols, D)
            x = x.reshape(B, rows * cols, -1) + pos[:, 1:]
            x = torch.gather(x, 1, ids_keep[..., None].expand(
                -1, -1, x.shape[-1]))
        cls = (bb.cls_token + pos[:, :1]).expand(B, -1, -1)
        x = bb.norm_pre(torch.cat([cls, x], dim=1))
        x = bb.norm(bb.blocks(x))
        return x, ids_shuffle, mask, (rows, cols), patches

    def predict_patches(self, images, generators=None):
        tokens, ids_shuffle, mask, grid = self.encode(images, generators)
        return self.decoder(tokens, ids_shuffle, grid), mask

    def loss(self, images: torch.Tensor, generators=None,
             reduce: bool = True) -> torch.Tensor:
        """Masked-patch loss of a normalized batch (B, C, H, W): the mean
        squared error over the masked patches (each sample masks the same
        number), the decoder's prediction head run on those alone.

        Returns: a scalar, or (B, ) per sample when not ``reduce``."""
        self._check(images)
        tokens, ids_shuffle, _, grid, patches = self._encode(images,
                                                             generators)
        pred = self.decoder(tokens, ids_shuffle, grid,
                            masked_only=True).float()
        with torch.no_grad(), torch.autocast(images.device.type,
                                             enabled=False):
            target = patches[:, tokens.shape[1] - 1:].float()
            if self.norm_pix_loss:
                target = normalize_patches(target)
        if reduce:
            return F.mse_loss(pred, target)
        return F.mse_loss(pred, target, reduction='none').mean(dim=(1, 2))


def _per_patch_linear(patch_embed: nn.Module, patch: int) -> bool:
    """Whether ``patch_embed`` is timm's convolution with kernel = stride =
    patch, no padding (a linear map of each patch's (C, p, p) pixels)."""
    proj = getattr(patch_embed, 'proj', None)
    return (isinstance(proj, nn.Conv2d) and proj.kernel_size == (patch, patch)
            and proj.stride == (patch, patch) and proj.padding == (0, 0)
            and proj.dilation == (1, 1) and proj.groups == 1
            and not getattr(patch_embed, 'dynamic_img_pad', False))
