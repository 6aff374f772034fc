"""Tiny masked-image models shared by the mim tests."""
from __future__ import annotations

import pytest

from perception.registry import MODELS

TINY_VIT = dict(embed_dim=32, depth=2, num_heads=2)


def tiny_mae(in_chans: int = 3, img_size=32, **kwargs):
    """An MAE small enough for CPU tests (patch 8, dim 32)."""
    cfg = dict(type='MAE',
               backbone=dict(type='VisionTransformer', arch=TINY_VIT,
                             img_size=img_size, patch_size=8,
                             in_chans=in_chans),
               decoder=dict(embed_dim=32, depth=1, num_heads=2))
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.fixture
def make_mae():
    return tiny_mae

