"""Vision Transformer backbone (Dosovitskiy et al. 2021) on timm's
``VisionTransformer``: same parameter names as timm, any channel count,
rectangular inputs, sin-cos or learned position embeddings recomputed or
resampled when the input size changes, features from chosen blocks.

The MAE encoder *is* this module, so pretraining weights load into
fine-tuning, and into ``timm.create_model``, with no key conversion.
"""
from __future__ import annotations

from typing import Sequence

import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer as _TimmVisionTransformer

from perception.models.backbones._attention import Attention
from perception.models.backbones._finetune import FineTuneMixin
from perception.models.backbones._pretrained import PretrainedMixin
from perception.registry import MODELS

VIT_ARCHS = {
    'tiny': dict(embed_dim=192, depth=12, num_heads=3),
    'small': dict(embed_dim=384, depth=12, num_heads=6),
    'base': dict(embed_dim=768, depth=12, num_heads=12),
    'large': dict(embed_dim=1024, depth=24, num_heads=16),
}


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def sincos_pos_embed(embed_dim: int, grid: Sequence[int],
                     cls_token: bool = True) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding as in MAE (He et al. 2021).

    Args:
        embed_dim: token width, a multiple of 4.
        grid: (rows, cols) of patches.
        cls_token: prepend a zero row for the class token.

    Returns:
        (1, [1 +] rows * cols, embed_dim) float32.
    """
    if embed_dim % 4:
        raise ValueError(f'sin-cos position embedding needs embed_dim % 4 == '
                         f'0, got {embed_dim}; use pos_embed_type="learned"')
    rows, cols = grid
    quarter = embed_dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64)
                            / quarter)
    yy, xx = torch.meshgrid(torch.arange(rows, dtype=torch.float64),
                            torch.arange(cols, dtype=torch.float64),
                            indexing='ij')
    # MAE's order: first half encodes the column, second half the row.
    parts = []
    for coord in (xx.flatten(), yy.flatten()):
        angles = coord[:, None] * omega[None]
        parts += [angles.sin(), angles.cos()]
    embed = torch.cat(parts, dim=1).float()
    if cls_token:
        embed = torch.cat([torch.zeros(1, embed_dim), embed])
    return embed[None]


@MODELS.register_module()
class VisionTransformer(PretrainedMixin, FineTuneMixin,
                        _TimmVisionTransformer):
    """ViT backbone with timm's parameter names.

    Args:
        arch: 'tiny' | 'small' | 'base' | 'large', or a dict with
            ``embed_dim``, ``depth``, ``num_heads``.
        img_size: training size, int or (height, width), e.g. (256, 512);
            other sizes work at run time (embeddings are recomputed).
        patch_size: patch side in pixels.
        in_chans: input channels (1 for single-window CT, 3 for RGB...).
        pos_embed_type: 'sincos' (fixed, MAE) or 'learned' (resampled
            bicubically for other grids).
        out_indices: blocks whose output :meth:`forward` returns, as
            (B, embed_dim, H/patch, W/patch) maps; the last block's output
            goes through the final norm.
        drop_path_rate: stochastic depth for fine-tuning.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH, prefix=None)``
            loads an encoder (e.g. from an MAE checkpoint, decoder dropped)
            and logs missing/unexpected keys; ``checkpoint`` may also be a
            training work dir or an ``export-backbone`` folder.
        frozen_stages: -1 trains everything; N freezes the embeddings and
            the first N blocks; ``depth`` or ``'all'`` the whole backbone
            (linear probe). See :mod:`~perception.models.backbones._finetune`.
        freeze_norm: freeze every norm layer.
        lora: ``dict(rank=8, alpha=16, targets=('qkv', 'proj'),
            dropout=0.0)``: LoRA on the attention projections, the rest of
            the backbone frozen (Hu et al. 2021).
        **timm_kwargs: other ``timm`` ``VisionTransformer`` arguments
            (``mlp_ratio``, ``qkv_bias``...).
    """

    def __init__(self, arch: str | dict = 'tiny',
                 img_size: int | Sequence[int] = 224, patch_size: int = 16,
                 in_chans: int = 3, pos_embed_type: str = 'sincos',
                 out_indices: Sequence[int] = (-1, ),
                 drop_path_rate: float = 0.0, init_cfg: dict | None = None,
                 frozen_stages: int | str = -1, freeze_norm: bool = False,
                 lora: dict | None = None, **timm_kwargs) -> None:
        if isinstance(arch, str):
            if arch not in VIT_ARCHS:
                raise ValueError(f'VisionTransformer: unknown arch {arch!r}; '
                                 f'choose from {sorted(VIT_ARCHS)} or give a '
                                 'dict(embed_dim=, depth=, num_heads=)')
            arch_name, params = arch, dict(VIT_ARCHS[arch])
        else:
            arch_name, params = 'custom', dict(arch)
        if pos_embed_type not in ('sincos', 'learned'):
            raise ValueError("pos_embed_type must be 'sincos' or 'learned', "
                             f'got {pos_embed_type!r}')
        params.update(timm_kwargs)
        params.setdefault('mlp_ratio', 4.0)
        self.img_size = _pair(img_size)
        super().__init__(img_size=self.img_size, patch_size=patch_size,
                         in_chans=in_chans, num_classes=0,
                         dynamic_img_size=True, drop_path_rate=drop_path_rate,
                         **{'attn_layer': Attention, **params})
        self.arch_name = arch_name
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.pos_embed_type = pos_embed_type
        self.model_args = dict(params, img_size=list(self.img_size),
                               patch_size=patch_size, in_chans=in_chans,
                               dynamic_img_size=True)
        depth = len(self.blocks)
        self.out_indices = sorted(i % depth for i in out_indices)
        if pos_embed_type == 'sincos':
            # fixed (not learned), as in MAE; stays a parameter so the key
            # and shape are timm's
            self.pos_embed.requires_grad_(False)
            self.pos_embed.data.copy_(sincos_pos_embed(
                self.embed_dim, self.patch_embed.grid_size))
        self.init_cfg = init_cfg
        self.setup_finetune(frozen_stages, freeze_norm, lora)

    def finetune_parts(self) -> tuple[list, list[list], list]:
        """Embeddings, one list per block, and the final norm (for
        ``frozen_stages``)."""
        embeddings = [p for p in (self.patch_embed, self.cls_token,
                                  self.pos_embed, self.reg_token,
                                  self.norm_pre) if p is not None]
        return (embeddings, [[block] for block in self.blocks],
                [self.norm, self.fc_norm, self.head])

    @property
    def timm_name(self) -> str:
        """The timm architecture these weights load into (with
        ``model_args`` for size, channels and widths)."""
        import timm
        candidates = [f'vit_base_patch{self.patch_size}_224',
                      'vit_base_patch16_224']
        if self.arch_name in VIT_ARCHS:
            stem = f'vit_{self.arch_name}_patch{self.patch_size}'
            candidates[:0] = [f'{stem}_{self.img_size[0]}', f'{stem}_224']
        return next(n for n in candidates if timm.is_model(n))

    def init_weights(self, *args, **kwargs) -> None:
        """timm calls this with arguments while building (its own init);
        mmengine calls it without, to apply ``init_cfg``."""
        if args or kwargs:
            super().init_weights(*args, **kwargs)
        else:
            self._init_from_cfg()

    def grid_pos_embed(self, grid: Sequence[int]) -> torch.Tensor:
        """Position embedding (1, 1 + rows * cols, D) for a patch grid: the
        stored one, sin-cos recomputed, or learned resampled."""
        grid = tuple(grid)
        if grid == tuple(self.patch_embed.grid_size):
            return self.pos_embed
        if self.pos_embed_type == 'sincos':
            return sincos_pos_embed(self.embed_dim, grid).to(self.pos_embed)
        return resample_abs_pos_embed(
            self.pos_embed, new_size=list(grid),
            old_size=list(self.patch_embed.grid_size), num_prefix_tokens=1)

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, H, W, D) from the dynamic-size patch embedding
        B, H, W, D = x.shape
        x = x.reshape(B, H * W, D)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        return self.pos_drop(x + self.grid_pos_embed((H, W)))

    def adapt_state_dict(self, state_dict: dict) -> dict:
        """Resample a file's position embedding to this model's grid, and
        inflate a single-channel patch embedding to ``in_chans``."""
        proj = state_dict.get('patch_embed.proj.weight')
        own = self.patch_embed.proj.weight
        if proj is not None and proj.shape[1] == 1 and own.shape[1] > 1 \
                and proj.shape[0] == own.shape[0] \
                and proj.shape[2:] == own.shape[2:]:
            # one-channel pretraining (a CT window) into k channels (2.5D
            # slabs, several windows): repeated and divided by k (I3D's
            # inflation), so k equal channels give the pretrained response
            state_dict['patch_embed.proj.weight'] = proj.repeat(
                1, own.shape[1], 1, 1) / own.shape[1]
        pos = state_dict.get('pos_embed')
        if pos is not None and pos.shape != self.pos_embed.shape:
            if self.pos_embed_type == 'sincos':
                state_dict['pos_embed'] = self.pos_embed.detach().clone()
            else:
                side = int(round((pos.shape[1] - 1) ** 0.5))
                state_dict['pos_embed'] = resample_abs_pos_embed(
                    pos, new_size=list(self.patch_embed.grid_size),
                    old_size=[side, side], num_prefix_tokens=1)
        return state_dict

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args: x (Tensor): (B, in_chans, H, W), H and W multiples of the
        patch size. Returns: one (B, D, H/p, W/p) map per ``out_indices``."""
        B, _, height, width = x.shape
        rows, cols = height // self.patch_size, width // self.patch_size
        x = self.norm_pre(self.patch_drop(self._pos_embed(
            self.patch_embed(x))))
        outs = []
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.out_indices:
                y = self.norm(x) if i == last else x
                outs.append(y[:, self.num_prefix_tokens:].transpose(1, 2)
                            .reshape(B, -1, rows, cols))
        return tuple(outs)
