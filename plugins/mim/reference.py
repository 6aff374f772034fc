"""The reference MAE (facebookresearch/mae, ``models_mae.py``) read from a
local checkout, for ``perception benchmark pretrain --reference-dir DIR``.

Nothing of it is vendored: the user clones https://github.com/facebookresearch/mae
and names the folder. Its code was written for timm 0.3.2 and NumPy < 1.24,
so two things are adapted in memory when it is loaded (the files on disk
are not touched), as a CPU user of it with today's libraries must do too:

- ``util/pos_embed.py`` uses ``np.float`` (removed in NumPy 1.24); it
  meant Python's float, i.e. ``np.float64``.
- ``models_mae.py`` passes ``qk_scale=None`` to timm's ``Block``, an
  argument today's timm no longer has; the ``Block`` it gets drops it (and
  then runs timm's current attention, ``F.scaled_dot_product_attention``).
"""
from __future__ import annotations

import os
import types
from functools import partial

from torch import nn

from perception.errors import UserError

_POS_EMBED_IMPORT = 'from util.pos_embed import get_2d_sincos_pos_embed'
_TIMM_IMPORT = 'from timm.models.vision_transformer import PatchEmbed, Block'


class ReferenceCheckoutError(UserError):
    """The reference checkout is missing or not the expected code."""


def _read(path: str, what: str, ref_dir: str) -> str:
    if not os.path.isfile(path):
        raise ReferenceCheckoutError(
            f'--reference-dir {ref_dir}: no {what} there; give a checkout of '
            'https://github.com/facebookresearch/mae (git clone it, then '
            'pass its folder)')
    with open(path, encoding='utf-8') as f:
        return f.read()


def _block_without_qk_scale():
    from timm.models.vision_transformer import Block

    class ReferenceBlock(Block):
        """timm's ``Block``, accepting timm 0.3's ``qk_scale`` (ignored:
        the reference passes None, i.e. the default 1/sqrt(head_dim))."""

        def __init__(self, *args, qk_scale=None, **kwargs) -> None:
            super().__init__(*args, **kwargs)

    return ReferenceBlock


def load_reference_mae(ref_dir: str) -> types.ModuleType:
    """``models_mae`` of a facebookresearch/mae checkout, adapted in memory
    to today's NumPy and timm (see the module docstring)."""
    from timm.models.vision_transformer import PatchEmbed
    pos_src = _read(os.path.join(ref_dir, 'util', 'pos_embed.py'),
                    'util/pos_embed.py', ref_dir)
    model_src = _read(os.path.join(ref_dir, 'models_mae.py'), 'models_mae.py',
                      ref_dir)
    for line in (_POS_EMBED_IMPORT, _TIMM_IMPORT):
        if line not in model_src:
            raise ReferenceCheckoutError(
                f'--reference-dir {ref_dir}: models_mae.py no longer has '
                f'"{line}"; this benchmark adapts the code as of commit '
                'efb2a80 (check out that version)')
    pos = types.ModuleType('mae_reference_pos_embed')
    pos.__file__ = os.path.join(ref_dir, 'util', 'pos_embed.py')
    exec(compile(pos_src.replace('dtype=np.float)', 'dtype=np.float64)'),
                 pos.__file__, 'exec'), pos.__dict__)
    models = types.ModuleType('mae_reference_models_mae')
    models.__file__ = os.path.join(ref_dir, 'models_mae.py')
    models.__dict__.update(PatchEmbed=PatchEmbed,
                           Block=_block_without_qk_scale(),
                           get_2d_sincos_pos_embed=pos.get_2d_sincos_pos_embed)
    source = model_src.replace(_POS_EMBED_IMPORT, '').replace(_TIMM_IMPORT, '')
    exec(compile(source, models.__file__, 'exec'), models.__dict__)
    return models


def reference_mae_vit_tiny(ref_dir: str, img_size: int = 224) -> nn.Module:
    """The reference ``MaskedAutoencoderViT`` with our ViT-Tiny config's
    sizes (encoder 192 x 12, 3 heads; decoder 128 x 4, 4 heads; patch 16;
    normalized-pixel loss). Call it as ``model(images, mask_ratio=0.75)``
    -> ``(loss, pred, mask)``."""
    models = load_reference_mae(ref_dir)
    return models.MaskedAutoencoderViT(
        img_size=img_size, patch_size=16, in_chans=3, embed_dim=192, depth=12,
        num_heads=3, decoder_embed_dim=128, decoder_depth=4,
        decoder_num_heads=4, mlp_ratio=4.0,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), norm_pix_loss=True)
