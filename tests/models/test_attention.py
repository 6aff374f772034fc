"""The core attention: timm's parameters and results; on CPU under bf16
autocast its attention product runs in float32 flash attention, or for
short sequences as bf16 matmuls around a float32 softmax (fastest there)."""
from __future__ import annotations

from unittest import mock

import torch
import torch.nn.functional as F
from timm.layers.attention import Attention as TimmAttention

from perception.models.backbones import Attention, VisionTransformer
from perception.models.backbones._attention import SHORT_SEQUENCE


def _pair():
    torch.manual_seed(0)
    ours = Attention(64, num_heads=4, qkv_bias=True).eval()
    theirs = TimmAttention(64, num_heads=4, qkv_bias=True).eval()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def test_same_keys_and_same_output_as_timm():
    ours, theirs = _pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(2, 10, 64)
    assert torch.equal(ours(x), theirs(x))


def _bf16_forward_recording_sdpa(module, x, **kwargs):
    """``module(x, **kwargs)`` under CPU bf16 autocast, and the query dtype of every
    ``F.scaled_dot_product_attention`` call it made."""
    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append(q.dtype)
        return real(q, k, v, *args, **kwargs)

    with mock.patch.object(F, 'scaled_dot_product_attention', spy), \
            torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x, **kwargs)
    return out, seen


def test_cpu_bf16_autocast_runs_the_product_in_float32():
    ours, theirs = _pair()
    x = torch.randn(2, SHORT_SEQUENCE + 1, 64)
    out, seen = _bf16_forward_recording_sdpa(ours, x)
    assert seen == [torch.float32]
    assert out.dtype == torch.bfloat16  # the projections stay in bf16
    reference = theirs(x)
    assert (out.float() - reference).abs().max() < 0.05


def test_cpu_bf16_autocast_short_sequences_run_bf16_matmuls():
    ours, theirs = _pair()
    x = torch.randn(2, SHORT_SEQUENCE, 64, requires_grad=True)
    out, seen = _bf16_forward_recording_sdpa(ours, x)
    assert seen == []                  # no flash kernel
    assert out.dtype == torch.bfloat16
    xt = x.detach().clone().requires_grad_()
    reference = theirs(xt)
    assert (out.float() - reference).abs().max() < 0.05
    out.float().sum().backward()
    reference.sum().backward()
    assert (x.grad - xt.grad).abs().max() < 0.05 * xt.grad.abs().max()
    # an attention mask takes the flash path
    _, seen = _bf16_forward_recording_sdpa(
        ours, x, attn_mask=torch.ones(SHORT_SEQUENCE, SHORT_SEQUENCE,
                                      dtype=torch.bool))
    assert seen == [torch.float32]


def test_vit_blocks_use_it():
    vit = VisionTransformer(arch=dict(embed_dim=64, depth=1, num_heads=4),
                            img_size=32, patch_size=16)
    assert isinstance(vit.blocks[0].attn, Attention)
