"""amp='auto' picks bf16 where the hardware has it natively and fp32
elsewhere (capability checks mocked), explicit modes win, the choice is in
the run's log; a bf16 MAE tracks its fp32 twin's loss over 100 steps."""
from __future__ import annotations

import glob
from pathlib import Path

import pytest
import torch

from perception.engine import amp as amp_module
from perception.engine.amp import AmpChoice, apply_amp, choose_amp, cpu_flags
from perception.engine.config import ConfigError
from perception.engine.launch import RunOptions, build_config

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / 'configs' / 'smoke' / 'tiny_classifier.py')
SGD = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))


def _flags(monkeypatch, *flags):
    monkeypatch.setattr(amp_module, 'cpu_flags', lambda: set(flags))


def test_auto_on_cpus_follows_the_bf16_flags(monkeypatch):
    _flags(monkeypatch, 'avx2', 'avx512f', 'avx512_bf16')
    choice = choose_amp('auto', cuda=False)
    assert choice.mode == 'bf16' and 'avx512_bf16' in choice.reason
    _flags(monkeypatch, 'avx2', 'amx_tile', 'amx_bf16')
    assert choose_amp('auto', cuda=False).mode == 'bf16'
    _flags(monkeypatch, 'avx2', 'avx512f', 'avx512bw')  # bf16 emulated only
    choice = choose_amp('auto', cuda=False)
    assert choice.mode == 'off' and 'none of avx512_bf16' in choice.reason
    assert choice.message().startswith('mixed precision: fp32')


def test_auto_on_gpus_and_explicit_modes(monkeypatch):
    yes = lambda: (True, 'GPU X (compute 8.0) supports bf16')  # noqa: E731
    no = lambda: (False, 'GPU T4 (compute 7.5) has no native bf16')  # noqa
    assert choose_amp('auto', cuda=True, gpu_check=yes).mode == 'bf16'
    assert choose_amp('auto', cuda=True, gpu_check=no).mode == 'off'
    _flags(monkeypatch, 'avx2')
    for asked, mode in (('bf16', 'bf16'), (True, 'bf16'), ('fp16', 'fp16'),
                        ('OFF', 'off'), (False, 'off'), (None, 'off')):
        assert choose_amp(asked, cuda=False).mode == mode
    assert choose_amp('auto', 'AmpOptimWrapper', cuda=False).mode == 'config'
    with pytest.raises(ConfigError, match='amp must be one of auto, bf16'):
        choose_amp('bf32')


def test_wrappers_for_each_choice():
    bf16 = AmpChoice('bf16', 'test')
    assert apply_amp(SGD, bf16, cuda=False)[0] == dict(
        type='CPUAmpOptimWrapper', dtype='bfloat16', optimizer=SGD[
            'optimizer'])
    gpu = apply_amp(SGD, AmpChoice('fp16', 'test'), cuda=True)[0]
    assert gpu['type'] == 'AmpOptimWrapper' and gpu['dtype'] == 'float16'
    assert gpu['loss_scale'] == 'dynamic'
    amp_cfg = dict(type='AmpOptimWrapper', loss_scale='dynamic',
                   optimizer={})
    assert apply_amp(amp_cfg, AmpChoice('off', 'asked'), cuda=True)[0] == \
        dict(type='OptimWrapper', optimizer={})
    odd, note = apply_amp(dict(type='MyWrapper'), bf16, cuda=False)
    assert odd == dict(type='MyWrapper') and 'MyWrapper' in note


def test_cpu_flags_reads_cpuinfo(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n')
    assert cpu_flags(str(info)) == {'fpu', 'avx2', 'amx_bf16'}
    assert cpu_flags(str(tmp_path / 'none')) == set()


@pytest.mark.parametrize('flags, wrapper', [
    (('avx512_bf16', ), 'CPUAmpOptimWrapper'), (('avx2', ), 'OptimWrapper')])
def test_build_config_applies_auto(monkeypatch, flags, wrapper):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    _flags(monkeypatch, *flags)
    notes = []
    cfg = build_config(SMOKE, 'train', RunOptions(), notes)
    assert cfg.optim_wrapper.type == wrapper
    assert notes[0].startswith('mixed precision: ')
    assert cfg.amp == ('bf16' if wrapper != 'OptimWrapper' else 'off')
    off = build_config(SMOKE, 'train', RunOptions(amp='off'))
    assert off.optim_wrapper.type == 'OptimWrapper'
    asked = build_config(SMOKE, 'train', RunOptions(
        cfg_options=('amp=off', )))
    assert asked.optim_wrapper.type == 'OptimWrapper'


def test_run_log_states_precision_and_compile_fallback(tmp_path,
                                                       monkeypatch):
    """One real run for two logged choices: fp32 under amp='auto' on a CPU
    without bf16, and unusable compile options falling back to eager."""
    from perception.cli import main
    from perception.data import write_shape_images
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    _flags(monkeypatch, 'avx2', 'avx512f')
    root = str(tmp_path / 'data')
    write_shape_images(root, n_per_class=2, size=32)
    work = tmp_path / 'w'
    assert main(['train', SMOKE, '--work-dir', str(work), '--cfg-options',
                 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=3',
                 'compile.backend=no_such_backend',
                 f'train_dataloader.dataset.data_root={root}',
                 f'val_dataloader.dataset.data_root={root}',
                 f'test_dataloader.dataset.data_root={root}']) == 0
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    line = next(x for x in log.splitlines() if 'mixed precision:' in x)
    assert "fp32 (no autocast): amp='auto': CPU has none of avx512_bf16" \
        in line
    assert log.index('mixed precision:') < log.index('Epoch(train)')
    assert "type='OptimWrapper'" in (work / 'tiny_classifier.py').read_text()
    assert 'compile: torch.compile failed (InvalidBackend' in log
    assert 'training eagerly' in log and (work / 'epoch_1.pth').is_file()


def _mae_losses(dtype: str | None, steps: int) -> list[float]:
    from mmengine.optim import OptimWrapper

    from perception.engine.optim import CPUAmpOptimWrapper
    from perception.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='MAE', backbone=dict(type='VisionTransformer', arch=dict(
            embed_dim=192, depth=12, num_heads=3), img_size=64,
            patch_size=16), decoder=dict(embed_dim=128, depth=4,
                                         num_heads=4)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.5e-4,
                                  weight_decay=0.05)
    wrapper = CPUAmpOptimWrapper(dtype=dtype, optimizer=optimizer) if dtype \
        else OptimWrapper(optimizer=optimizer)
    data = torch.Generator().manual_seed(1)
    images = torch.rand(8, 3, 64, 64, generator=data)
    images = (images - 0.5) / 0.25
    losses = []
    for _ in range(steps):
        with wrapper.optim_context(model):
            loss = model(images, mode='loss')['loss']
        wrapper.update_params(loss)
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_bf16_mae_loss_tracks_fp32_over_100_steps():
    """The MAE ViT-Tiny recipe (dim 192, depth 12; decoder 128 x 4) on one
    fixed batch at 64 px: same seed, same masks; the loss after 100 steps
    (mean of the last 5) is within 2% between bf16 autocast and fp32."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster for this size on a shared machine
    try:
        fp32 = _mae_losses(None, 100)
        bf16 = _mae_losses('bfloat16', 100)
    finally:
        torch.set_num_threads(threads)
    assert fp32[-1] < 0.8 * fp32[0]  # it learned something
    last32, last16 = sum(fp32[-5:]) / 5, sum(bf16[-5:]) / 5
    assert abs(last16 - last32) / last32 < 0.02, (last32, last16)
