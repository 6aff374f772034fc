"""Necks: multi-scale feature pyramids between a backbone and a head.

Contract every neck keeps (heads rely on it):

- ``forward(feats: tuple[Tensor, ...]) -> tuple[Tensor, ...]``: ``feats``
  is the backbone's tuple of maps; the result is one
  (B, out_channels, H / s, W / s) map per stride ``s``, finest first.
- ``strides`` (tuple[int, ...], increasing) and ``out_channels`` (int).
- Sizes: a level made by upsampling is exactly 2x the coarser map; one made
  by downsampling (max-pool or stride-2 convolution) is ``ceil(h / 2)``;
  input levels keep their size. So with an image side that is a multiple
  of the largest stride (the detector's preprocessor pads to one) every
  level is exactly H / s; otherwise heads must take the sizes from the maps
  (``feat.shape[-2:]``), never from H / s.
- Export-friendly: Conv, ConvTranspose, MaxPool, nearest interpolation to a
  map's size, GroupNorm / BatchNorm / LayerNorm, slicing; no custom ops and
  no Python control flow on tensor values.
"""
from perception.models.necks.fpn import FPN, PAFPN
from perception.models.necks.simple_fpn import SimpleFPN

__all__ = ['SimpleFPN', 'FPN', 'PAFPN']
