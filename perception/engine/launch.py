"""Building and running mmengine's Runner for ``perception train`` and
``perception test`` (mmpretrain's ``tools/train.py`` habit).

Every run gets perception's checkpoint hooks, the safe loader (with
``--trust-checkpoint`` scoped to the run), CPU AMP where no GPU is present,
gloo under torchrun without a GPU, and readable errors for bad input.
"""
from __future__ import annotations

import argparse
import contextlib
import os.path as osp
import sys
from typing import Callable, Iterator

import torch
from mmengine.config import Config

import perception.engine  # noqa: F401  (registers hooks, wrappers; safe I/O)
from perception._registry import (UnknownTypeError, translate_unknown_type,
                                  unknown_type_message)
from perception.engine.checkpoint import (UnsafeCheckpointError,
                                          resolve_checkpoint,
                                          trust_checkpoints)
from perception.engine.config import ConfigError, load_config
from perception.engine.dist import (LauncherError, cpu_ddp_wrapper_cfg,
                                    destroy_process_group,
                                    init_cpu_process_group)
from perception.engine.optim import cpu_amp_optim_wrapper
from perception.engine.privacy import private_runner_class

#: hooks added to every run (type names in perception's HOOKS).
RUN_HOOKS = ('CheckpointStateHook', 'PretrainedCfgHook')

#: errors caused by the user's input: printed as one message, exit 2.
USER_ERRORS = (UnsafeCheckpointError, UnknownTypeError, ConfigError,
               LauncherError, FileNotFoundError)


def _add_run_hooks(cfg: Config) -> None:
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks if isinstance(h, dict)}
    hooks += [dict(type=t) for t in RUN_HOOKS if t not in present]
    cfg.custom_hooks = hooks


def _set_amp(cfg: Config, amp: bool) -> None:
    wrapper = dict(cfg.get('optim_wrapper') or {})
    if not wrapper:
        return
    if amp:
        if wrapper.get('type') in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
            print('perception: the config already uses '
                  f"{wrapper['type']}; --amp changes nothing",
                  file=sys.stderr)
        else:
            wrapper['type'] = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
    if not torch.cuda.is_available():
        wrapper = cpu_amp_optim_wrapper(wrapper)
    cfg.optim_wrapper = wrapper


def build_config(args: argparse.Namespace, mode: str) -> Config:
    """The resolved config of a ``train`` or ``test`` command line."""
    cfg = load_config(args.config, args.cfg_options)
    if getattr(args, 'work_dir', None):
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)
    cfg.launcher = args.launcher
    _add_run_hooks(cfg)
    if mode == 'train':
        resume = getattr(args, 'resume', None)
        if resume == 'auto':
            cfg.resume, cfg.load_from = True, None
            if not osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint')):
                print(f'perception train: no checkpoint in {cfg.work_dir} '
                      'to resume from; training from the start',
                      file=sys.stderr)
        elif resume is not None:
            cfg.resume, cfg.load_from = True, resume
        _set_amp(cfg, bool(getattr(args, 'amp', False)))
    else:
        cfg.load_from = resolve_checkpoint(args.checkpoint)
        cfg.resume = False
        _set_amp(cfg, False)
        _add_test_outputs(cfg, args)
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        cfg.model_wrapper_cfg = cpu_ddp_wrapper_cfg(
            cfg.get('model_wrapper_cfg'),
            bool(cfg.get('find_unused_parameters', False)))
    return cfg


def _add_test_outputs(cfg: Config, args: argparse.Namespace) -> None:
    if getattr(args, 'out', None):
        dump = dict(type='DumpPredictionsJSON', out_file=args.out)
        evaluator = cfg.get('test_evaluator')
        if isinstance(evaluator, dict) and 'metrics' not in evaluator:
            evaluator = [evaluator]
        if isinstance(evaluator, (list, tuple)):
            cfg.test_evaluator = list(evaluator) + [dump]
        elif isinstance(evaluator, dict):
            evaluator['metrics'] = list(evaluator['metrics']) + [dump]
        else:
            cfg.test_evaluator = [dump]
    if getattr(args, 'show_dir', None):
        cfg.custom_hooks = list(cfg.custom_hooks) + [
            dict(type='PredictionPicturesHook', out_dir=args.show_dir)]


@contextlib.contextmanager
def _process_group(launcher: str, cfg: Config) -> Iterator[None]:
    started = False
    if launcher == 'pytorch':
        timeout = (cfg.get('env_cfg') or {}).get('dist_cfg', {}).get(
            'timeout')
        started = init_cpu_process_group(timeout)
    try:
        yield
    finally:
        if started:
            destroy_process_group()


def _run(args: argparse.Namespace, mode: str,
         action: Callable[[object], object]) -> int:
    try:
        cfg = build_config(args, mode)
        with trust_checkpoints(bool(args.trust_checkpoint)), \
                _process_group(args.launcher, cfg):
            try:
                runner = private_runner_class(_runner_class(cfg),
                                              cfg).from_cfg(cfg)
                action(runner)
            except KeyError as exc:
                translated = translate_unknown_type(exc)
                if translated is None:
                    raise
                raise translated from None
    except USER_ERRORS as exc:
        print(f'perception {mode}: error: {exc}', file=sys.stderr)
        return 2
    return 0


def _runner_class(cfg: Config) -> type:
    """mmengine's ``Runner``, or the config's ``runner_type``."""
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner
    from perception.registry import RUNNERS
    runner_cls = RUNNERS.get(cfg.runner_type)
    if runner_cls is None:
        raise UnknownTypeError(unknown_type_message(RUNNERS, cfg.runner_type))
    return runner_cls


def train(args: argparse.Namespace) -> int:
    """``perception train``: build the runner from the config and train."""
    return _run(args, 'train', lambda runner: runner.train())


def test(args: argparse.Namespace) -> int:
    """``perception test``: load the checkpoint and evaluate on the test
    split; metrics are logged and returned by the runner."""
    return _run(args, 'test', lambda runner: runner.test())


def default_work_dir(config: str) -> str:
    """``work_dirs/<config stem>``, where a run of ``config`` writes."""
    return osp.join('work_dirs', osp.splitext(osp.basename(config))[0])

