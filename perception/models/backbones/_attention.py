"""Multi-head self-attention with timm's parameter names whose attention
product runs in float32 on CPU under bf16 autocast.

Why: oneDNN's bf16 flash-attention kernels for CPU are slower than its fp32
ones (forward + backward, batch 32, 3 heads x 50 tokens x 64: 13.7 ms bf16
against 7.2 ms fp32 on this project's 2-core machine), while the
projections around them gain from bf16. Everywhere else (GPU, fp32 on CPU)
this is timm's ``Attention`` unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers.attention import Attention as _TimmAttention


def _cpu_bf16_autocast(x: torch.Tensor) -> bool:
    return (x.device.type == 'cpu' and torch.is_autocast_enabled('cpu')
            and torch.get_autocast_dtype('cpu') == torch.bfloat16)


class Attention(_TimmAttention):
    """timm's ``Attention`` (same parameters and state-dict keys)."""

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        """Args: x (Tensor): (B, N, C) tokens. Returns (B, N, C)."""
        if not (self.fused_attn and _cpu_bf16_autocast(x)):
            return super().forward(x, attn_mask=attn_mask,
                                   is_causal=is_causal)
        B, N, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads,
                                  self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        with torch.autocast('cpu', enabled=False):
            out = F.scaled_dot_product_attention(
                q.float(), k.float(), v.float(), attn_mask=attn_mask,
                dropout_p=self.attn_drop.p if self.training else 0.0,
                is_causal=is_causal)
        out = out.to(q.dtype).transpose(1, 2).reshape(B, N, self.attn_dim)
        out = self.norm(out)
        if gate is not None:
            out = out * gate
        return self.proj_drop(self.proj(out))
