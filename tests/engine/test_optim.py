"""CPUAmpOptimWrapper: bf16 autocast on CPU, no grad scaler; chosen for
AmpOptimWrapper configs and --amp when no GPU is present."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from perception.engine.optim import CPUAmpOptimWrapper, cpu_amp_optim_wrapper
from perception.registry import OPTIM_WRAPPERS

REPO = Path(__file__).resolve().parents[2]


class Regressor(BaseModel):
    """y = x @ w through two Linear layers (BaseModel: the Runner's path)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(16, 32)
        self.out = torch.nn.Linear(32, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        pred = self.out(torch.relu(self.hidden(inputs)))
        if mode == 'loss':
            return {'loss': F.mse_loss(pred.float(), data_samples)}
        return pred


def test_cpu_amp_trains_with_bf16_matmuls():
    torch.manual_seed(0)
    model = Regressor()
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='CPUAmpOptimWrapper',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05)))
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    seen = []
    model.hidden.register_forward_hook(
        lambda module, args, output: seen.append(output.dtype))
    x = torch.randn(64, 16)
    y = x @ torch.randn(16, 1)
    losses = []
    for _ in range(20):
        log = model.train_step(dict(inputs=x, data_samples=y), wrapper)
        losses.append(log['loss'].detach().item())
    assert seen == [torch.bfloat16] * 20  # the matmul ran in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0], losses
    assert model(x).dtype == torch.float32  # outside the step: fp32 again
    assert 'loss_scaler' not in wrapper.state_dict()


def test_amp_configs_become_cpu_amp_without_a_gpu():
    cfg = cpu_amp_optim_wrapper(dict(type='AmpOptimWrapper',
                                     loss_scale='dynamic', optimizer={}))
    assert cfg == dict(type='CPUAmpOptimWrapper', optimizer={})
    plain = dict(type='OptimWrapper', optimizer={})
    assert cpu_amp_optim_wrapper(plain) == plain
    with pytest.raises(ValueError, match='bfloat16'):
        CPUAmpOptimWrapper(dtype='float64', optimizer=torch.optim.SGD(
            Regressor().parameters(), lr=0.1))


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='checks the CPU choice; a GPU run keeps '
                    'AmpOptimWrapper')
def test_train_amp_flag_selects_cpu_amp():
    from perception.engine.launch import RunOptions, build_config
    cfg = build_config(str(REPO / 'configs/smoke/tiny_classifier.py'),
                       'train', RunOptions(amp=True))
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    assert cfg.work_dir == 'work_dirs/tiny_classifier'
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert {'CheckpointStateHook', 'PretrainedCfgHook'} <= set(hooks)
    assert len(hooks) == len(set(hooks))  # each run hook added once


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='checks the CPU path; a GPU run uses '
                    'AmpOptimWrapper')
def test_perception_train_amp_runs_on_cpu(tmp_path):
    from perception.cli import all_commands
    from perception.data import write_shape_images
    write_shape_images(str(tmp_path / 'data'), n_per_class=2, size=32)
    root = str(tmp_path / 'data')
    status = all_commands()['train'].main([
        str(REPO / 'configs/smoke/tiny_classifier.py'), '--amp',
        '--work-dir', str(tmp_path / 'w'), '--cfg-options',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=3',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'])
    assert status == 0
    dumped = (tmp_path / 'w' / 'tiny_classifier.py').read_text()
    assert "type='CPUAmpOptimWrapper'" in dumped
    ckpt = torch.load(tmp_path / 'w' / 'epoch_1.pth', weights_only=True)
    assert 'loss_scaler' not in ckpt['optimizer']
    # the smoke config's TensorBoard backend wrote event files
    assert list((tmp_path / 'w').glob('*/vis_data/events.out.tfevents*'))
    assert all(v.dtype == torch.float32 for v in ckpt['state_dict'].values()
               if v.is_floating_point())
