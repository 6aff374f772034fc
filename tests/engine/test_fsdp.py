"""FullyShardedWrapper (FSDP2 ``fully_shard``) on CPU over gloo, in one
process (a world of one: the sharding code path is the real one, each rank
holds the whole shard): same training as the plain model, full state dicts
for checkpoints, clear errors. The two-process run is in test_dist.py
(slow)."""
from __future__ import annotations

import copy
import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.optim import OptimWrapper

from perception.engine.fsdp import FSDPConfigError, FullyShardedWrapper
from perception.models.classifier import TimmClassifier
from perception.structures import DataSample


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def gloo_world_of_one():
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}',
                            rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def tiny_model() -> TimmClassifier:
    torch.manual_seed(0)
    return TimmClassifier('test_convnext', num_classes=3, data_preprocessor=dict(
        type='PerceptionDataPreprocessor', mean=[0, 0, 0], std=[255] * 3))


def batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, 32, 32), generator=g).to(torch.uint8)
              for _ in range(4)]
    samples = [DataSample(metainfo=dict(img_shape=(32, 32))).set_gt_label(i % 3)
               for i in range(4)]
    return dict(inputs=inputs, data_samples=samples)


def test_fsdp_trains_like_the_plain_model(gloo_world_of_one):
    plain = tiny_model()
    sharded = FullyShardedWrapper(copy.deepcopy(plain), shard_modules=['ConvNeXtStage'],
                                  device_ids=None, broadcast_buffers=False)
    assert sharded.sharded_units == 4
    wrappers = [OptimWrapper(torch.optim.AdamW(m.parameters(), lr=1e-2))
                for m in (plain, sharded)]
    for step in range(2):
        for model, wrapper in zip((plain, sharded), wrappers):
            model.train_step(batch(step), wrapper)
    full, optim = sharded.full_state(wrappers[1].optimizer)
    reference = plain.state_dict()
    assert set(full) == set(reference)
    for key, value in full.items():
        assert type(value) is torch.Tensor  # gathered, not a DTensor shard
        torch.testing.assert_close(value, reference[key], rtol=1e-5, atol=1e-6)
    assert optim['state'] and all(type(v['exp_avg']) is torch.Tensor
                                  for v in optim['state'].values())
    # What mmengine's Runner reads as the model's state_dict is the full one.
    assert {k: type(v) for k, v in sharded.module.state_dict().items()} == {
        k: torch.Tensor for k in reference}
    # The gathered weights load into a plain model (test, export), and full
    # weights load into the shards of a new run (load_from).
    fresh = tiny_model()
    fresh.load_state_dict(full)
    torch.manual_seed(1)
    other = FullyShardedWrapper(TimmClassifier('test_convnext', num_classes=3,
                                               data_preprocessor=dict(
        type='PerceptionDataPreprocessor', mean=[0, 0, 0], std=[255] * 3)))
    assert other.load_full_state(full) == ([], [])
    with torch.no_grad():
        out = sharded.test_step(batch(9))
        want = fresh.test_step(batch(9))
        loaded = other.test_step(batch(9))
    torch.testing.assert_close(out[0].pred_score, want[0].pred_score)
    torch.testing.assert_close(loaded[0].pred_score, want[0].pred_score)


def test_fsdp_errors_name_the_problem(gloo_world_of_one):
    with pytest.raises(FSDPConfigError, match=r"no module of the classes \['Blok'\].*"
                       'ConvNeXtStage'):
        FullyShardedWrapper(tiny_model(), shard_modules=['Blok'])


def test_fsdp_outside_a_distributed_run():
    with pytest.raises(FSDPConfigError, match='torchrun'):
        FullyShardedWrapper(tiny_model())
