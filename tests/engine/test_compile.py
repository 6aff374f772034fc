"""The compiled training step: a compiler failure (at once or at the first
step) falls back to eager and the log says why; a model's own error still
propagates; a run with --compile trains with the compiled step (slow; the
run-level fallback with unusable options is in test_amp.py's run, which
trains once for both)."""
from __future__ import annotations

import glob
from pathlib import Path

import pytest
import torch

from perception.cli import main
from perception.data import write_shape_images
from perception.engine.compile import guarded_compile
from perception.engine.launch import RunOptions, build_config

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / 'configs' / 'smoke' / 'tiny_classifier.py')


def _double(x):
    return x * 2 + 1


def test_backend_failure_at_the_first_call_falls_back_to_eager():
    def broken(gm, example_inputs):
        raise RuntimeError('no C++ compiler found')
    lines = []
    step = guarded_compile(_double, dict(backend=broken), lines.append)
    x = torch.arange(3.0)
    assert torch.equal(step(x), _double(x))
    assert step.is_eager() and len(lines) == 1
    assert 'BackendCompilerFailed' in lines[0]
    assert 'no C++ compiler found' in lines[0]
    assert 'training eagerly' in lines[0]
    assert torch.equal(step(x), _double(x)) and len(lines) == 1  # once


def test_bad_options_fall_back_at_once_and_model_errors_propagate():
    lines = []
    step = guarded_compile(_double, dict(backend='no_such_backend'),
                           lines.append)
    assert step is _double and 'InvalidBackend' in lines[0]

    def model_error(x):
        raise ValueError('image 3: wrong channel count')
    step = guarded_compile(model_error, dict(backend='eager'), lines.append)
    with pytest.raises(ValueError, match='wrong channel count'):
        step(torch.ones(1))


def _train(tmp_path, *flags, options=()) -> str:
    root = str(tmp_path / 'data')
    write_shape_images(root, n_per_class=2, size=32)
    work = tmp_path / 'w'
    assert main(['train', SMOKE, '--work-dir', str(work), '--amp', 'off',
                 *flags, '--cfg-options', *options, 'train_cfg.max_epochs=1',
                 'train_dataloader.batch_size=3', 'train_cfg.val_interval=9',
                 f'train_dataloader.dataset.data_root={root}',
                 f'val_dataloader.dataset.data_root={root}',
                 f'test_dataloader.dataset.data_root={root}']) == 0
    return open(glob.glob(str(work / '*' / '*.log'))[0]).read()


def test_compile_key_becomes_the_guarded_hook():
    cfg = build_config(SMOKE, 'train', RunOptions(compile=True))
    assert cfg.compile is None  # mmengine's own compile (no fallback) off
    assert cfg.custom_hooks[-1] == dict(type='CompileHook', options={})
    cfg = build_config(SMOKE, 'train', RunOptions(cfg_options=(
        "compile.backend=eager", )))
    assert cfg.custom_hooks[-1]['options'] == dict(backend='eager')
    assert 'CompileHook' not in str(build_config(SMOKE, 'train').custom_hooks)


@pytest.mark.slow
def test_run_falls_back_when_the_backend_fails(tmp_path):
    from torch._dynamo import register_backend

    @register_backend(name='perception_test_broken')
    def broken(gm, example_inputs):
        raise RuntimeError('simulated compiler crash')

    log = _train(tmp_path, options=['compile.backend=perception_test_broken'])
    assert 'compile: torch.compile of train_step' in log
    assert 'simulated compiler crash' in log and 'training eagerly' in log
    assert 'Epoch(train) [1]' in log
    assert (tmp_path / 'w' / 'epoch_1.pth').is_file()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_compiled_run_trains(tmp_path, monkeypatch):
    """Inductor (the default backend) compiles the step on this CPU (several
    minutes on 2 busy cores: one compile thread, to share them)."""
    import torch._inductor.config as inductor_config
    monkeypatch.setattr(inductor_config, 'compile_threads', 1)
    log = _train(tmp_path, '--compile')
    assert 'compile: torch.compile of train_step' in log
    assert 'training eagerly' not in log, log
    assert 'Epoch(train) [1]' in log
