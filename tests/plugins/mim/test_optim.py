"""MAE through mmengine's optimizer wrappers: CPU bf16 autocast (the
engine's CPUAmpOptimWrapper), gradient accumulation, GPU mixed precision."""
from __future__ import annotations

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from perception.engine.optim import CPUAmpOptimWrapper


def _step(model, wrapper, x):
    return model.train_step(dict(inputs=list(x)), wrapper)


def test_cpu_bf16_autocast_step(make_mae):
    model = make_mae()
    wrapper = CPUAmpOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3))
    seen = []
    model.backbone.blocks[0].attn.qkv.register_forward_hook(
        lambda m, i, o: seen.append(o.dtype))
    before = model.backbone.blocks[0].attn.qkv.weight.detach().clone()
    log = _step(model, wrapper, torch.randn(2, 3, 32, 32))
    assert seen == [torch.bfloat16]
    assert torch.isfinite(log['loss'])
    assert model.backbone.blocks[0].attn.qkv.weight.dtype == torch.float32
    assert not torch.equal(before, model.backbone.blocks[0].attn.qkv.weight)


def test_gradient_accumulation_by_config(make_mae):
    model = make_mae()
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', accumulative_counts=2,
        optimizer=dict(type='SGD', lr=0.1)))
    weight = model.decoder.pred.weight
    before = weight.detach().clone()
    _step(model, wrapper, torch.randn(2, 3, 32, 32))
    assert torch.equal(before, weight)            # accumulated, not applied
    _step(model, wrapper, torch.randn(2, 3, 32, 32))
    assert not torch.equal(before, weight)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='needs a CUDA GPU (fp16/bf16 autocast on GPU)')
@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_gpu_mixed_precision_step(make_mae, dtype):
    model = make_mae().cuda()
    wrapper = build_optim_wrapper(model, dict(
        type='AmpOptimWrapper', dtype=dtype,
        optimizer=dict(type='AdamW', lr=1e-3)))
    log = _step(model, wrapper, torch.randn(2, 3, 32, 32))
    assert torch.isfinite(log['loss'])
