"""Multi-head self-attention with timm's parameter names, laid out so that
its backward needs fewer copies, and whose attention product runs in
float32 on CPU under bf16 autocast.

Layout: timm splits ``qkv`` as ``(B, N, 3, H, hd).permute(2, 0, 3, 1, 4)``;
the gradients of q, k and v then go back through a stack into
``(3, B, H, N, hd)`` and a second copy into ``qkv``'s ``(B, N, 3 * C)``.
Here they are split on dim 2 (``unbind(2)`` then ``transpose(1, 2)``, still
views), so their gradients stack straight into ``(B, N, 3, H, hd)``: one
copy, the same numbers.

Precision: oneDNN's bf16 flash-attention kernels for CPU are slower than
its fp32 ones (forward + backward, batch 32, 3 heads x 50 tokens x 64:
13.7 ms bf16 against 7.2 ms fp32 on this project's 2-core machine), while
the projections around them gain from bf16. So under CPU bf16 autocast the
product runs as fp32 flash attention, or, for short sequences (at most
``SHORT_SEQUENCE`` tokens, e.g. the MAE encoder's 50), as plain bf16
matmuls around a float32 softmax, faster still there (batch 32, 3 x 64,
forward + backward, one thread: 50 tokens 0.51x and 100 tokens 0.67x the
time of fp32 flash; 145 tokens even; 197 tokens x 32 dims 1.3x, so the
decoder's 197 stay on flash). Everywhere else the math is timm's
``Attention``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers.attention import Attention as _TimmAttention

#: longest sequence whose attention runs as bf16 matmuls under CPU bf16
#: autocast (longer ones: fp32 flash attention)
SHORT_SEQUENCE = 128


def _cpu_bf16_autocast(x: torch.Tensor) -> bool:
    return (x.device.type == 'cpu' and torch.is_autocast_enabled('cpu')
            and torch.get_autocast_dtype('cpu') == torch.bfloat16)


class Attention(_TimmAttention):
    """timm's ``Attention`` (same parameters and state-dict keys)."""

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        """Args: x (Tensor): (B, N, C) tokens. Returns (B, N, C)."""
        if not self.fused_attn:
            return super().forward(x, attn_mask=attn_mask,
                                   is_causal=is_causal)
        B, N, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        q, k, v = (t.transpose(1, 2) for t in self.qkv(x).view(
            B, N, 3, self.num_heads, self.head_dim).unbind(2))
        q, k = self.q_norm(q), self.k_norm(k)
        dropout = self.attn_drop.p if self.training else 0.0
        if _cpu_bf16_autocast(x) and N <= SHORT_SEQUENCE \
                and attn_mask is None and not is_causal:
            attn = (q * self.scale) @ k.transpose(-2, -1)       # bf16
            attn = self.attn_drop(attn.float().softmax(dim=-1).to(q.dtype))
            out = attn @ v
        elif _cpu_bf16_autocast(x):
            with torch.autocast('cpu', enabled=False):
                out = F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(), attn_mask=attn_mask,
                    dropout_p=dropout, is_causal=is_causal).to(q.dtype)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=dropout,
                is_causal=is_causal)
        out = self.norm(out.transpose(1, 2).reshape(B, N, self.attn_dim))
        if gate is not None:
            out = out * gate
        return self.proj_drop(self.proj(out))
