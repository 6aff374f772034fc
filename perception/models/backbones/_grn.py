"""ConvNeXt V2's global response norm (Woo et al. 2023) written with fewer
passes over the activation map, for deployment speed.

timm's ``GlobalResponseNorm`` computes ``x + (bias + weight * (x * n))``:
four elementwise passes over the (B, 4C, H, W) hidden map of every block.
The same value is ``x * (1 + weight * n) + bias`` with ``1 + weight * n``
only (B, 4C, 1, 1), so two passes; in ONNX Runtime on a CPU this is most of
what GRN costs (the hidden maps of the stride-4 stage are the largest
tensors of a detector).
"""
from __future__ import annotations

import torch
from timm.layers.grn import GlobalResponseNorm
from torch import nn

__all__ = ['FewPassResponseNorm', 'use_few_pass_grn']


class FewPassResponseNorm(GlobalResponseNorm):
    """:class:`timm.layers.GlobalResponseNorm` with the same parameters
    (``weight``, ``bias``: timm's names, so checkpoints load unchanged) and
    the same value up to float rounding, in two elementwise passes.

    Input and output: (B, C, H, W) (``channels_last=False``) or
    (B, H, W, C).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_g = x.norm(p=2, dim=self.spatial_dim, keepdim=True)
        x_n = x_g / (x_g.mean(dim=self.channel_dim, keepdim=True) + self.eps)
        scale = 1 + self.weight.view(self.wb_shape) * x_n
        return torch.addcmul(self.bias.view(self.wb_shape), x, scale)


def use_few_pass_grn(model: nn.Module) -> int:
    """Replace every timm ``GlobalResponseNorm`` inside ``model`` by a
    :class:`FewPassResponseNorm` holding the same parameter tensors.
    Returns how many were replaced."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is GlobalResponseNorm:
                new = FewPassResponseNorm(
                    child.weight.numel(), eps=child.eps,
                    channels_last=child.channel_dim == -1,
                    device=child.weight.device, dtype=child.weight.dtype)
                new.weight, new.bias = child.weight, child.bias
                setattr(parent, name, new)
                count += 1
    return count
