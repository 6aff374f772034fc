"""Building and running mmengine's Runner for training and testing
(mmpretrain's ``tools/train.py`` habit), with plain arguments: the Python
API (:mod:`perception.apis`) and the command line both call it.

Every run gets perception's checkpoint hooks, the safe loader (installed
here, explicitly, and with ``trust_checkpoint`` scoped to the run), the
precision ``amp`` picks (bf16 where the hardware has it, :mod:`.amp`), an
optional compiled training step with an eager fallback, gloo under torchrun
without a GPU, and readable errors for bad input
(:class:`perception.errors.UserError`). Nothing here prints: notes go to
the ``perception`` logger, and the run's choices (precision) to the run's
log as soon as the runner exists.
"""
from __future__ import annotations

import contextlib
import logging
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from mmengine.config import Config

from perception._registry import UnknownTypeError, unknown_type_message
from perception.engine import install
from perception.engine.amp import AmpChoice, apply_amp, choose_amp
from perception.engine.checkpoint import resolve_checkpoint, trust_checkpoints
from perception.engine.config import load_config
from perception.engine.config_dump import keeping_source_config
from perception.engine.data_guard import explain_worker_failure
from perception.engine.dist import (
    add_sync_buffers_hook,
    cpu_ddp_wrapper_cfg,
    destroy_process_group,
    init_cpu_process_group,
)
from perception.engine.fsdp import add_fsdp_hook
from perception.engine.privacy import private_runner_class
from perception.engine.safe_save import checkpoint_problem, find_resumable_checkpoint
from perception.fileio import CheckpointError
from perception.registry import translate_unknown_type

#: hooks added to every run (type names in perception's HOOKS).
RUN_HOOKS = ('CheckpointStateHook', 'PretrainedCfgHook', 'RandomStateHook',
             'BadSampleHook')
#: hooks that act on the PyTorch model's weights (EMAHook deep-copies the
#: model and swaps its parameters): left out of a test run on an exported
#: model, which is fixed (and an ONNX Runtime session cannot be copied).
WEIGHT_HOOKS = ('EMAHook', 'SyncBuffersHook', 'FullStateDictHook',
                'CompileHook')

logger = logging.getLogger('perception')


@dataclass
class RunOptions:
    """What a ``train`` or ``test`` run is asked to do besides its config.

    Attributes:
        work_dir: logs and checkpoints (default ``work_dirs/<config stem>``).
        cfg_options: ``KEY=VALUE`` overrides (mmengine's syntax).
        launcher: ``'none'`` or ``'pytorch'`` (under torchrun).
        trust_checkpoint: allow checkpoints that need full unpickling.
        resume: train only: ``'auto'`` (latest in the work dir) or a path.
        amp: train only: ``'auto'``, ``'bf16'``, ``'fp16'``, ``'off'`` (True
            means bf16); None: the config's ``amp`` (default ``'auto'``).
        compile: train only: compile the training step (torch.compile,
            eager fallback); None: the config's ``compile``.
        checkpoint: test only: the checkpoint (or a work dir) to evaluate.
        out: test only: write predictions as JSON here.
        show_dir: test only: write pictures of predictions here (a
            relative path is inside the work dir).
        backend: test only: ``'torch'``, or the backend the caller swaps in
            for the model (``checkpoint`` is then an exported model and is
            not loaded into the config's model; :data:`WEIGHT_HOOKS` are
            left out).
    """

    work_dir: str | None = None
    cfg_options: Sequence[str] = field(default_factory=tuple)
    launcher: str = 'none'
    trust_checkpoint: bool = False
    resume: str | None = None
    amp: str | bool | None = None
    compile: bool | None = None
    checkpoint: str | None = None
    out: str | None = None
    show_dir: str | None = None
    backend: str = 'torch'


def _add_run_hooks(cfg: Config) -> None:
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks if isinstance(h, dict)}
    hooks += [dict(type=t) for t in RUN_HOOKS if t not in present]
    cfg.custom_hooks = hooks


def _hook_name(hook: Any) -> str:
    kind = hook.get('type') if isinstance(hook, dict) else type(hook)
    kind = getattr(kind, '__name__', kind)
    return str(kind).rsplit('.', 1)[-1]


def _drop_weight_hooks(cfg: Config, backend: str) -> None:
    """A test run on ``backend`` (an exported model) without the
    :data:`WEIGHT_HOOKS` of the config; logged at INFO."""
    hooks = list(cfg.get('custom_hooks') or [])
    dropped = [_hook_name(h) for h in hooks if _hook_name(h) in WEIGHT_HOOKS]
    if not dropped:
        return
    logger.info('%s test run: hooks %s left out of the evaluation (they act '
                "on the PyTorch model's weights; the exported model is "
                'fixed)', backend, ', '.join(dropped))
    cfg.custom_hooks = [h for h in hooks if _hook_name(h) not in WEIGHT_HOOKS]


def _set_amp(cfg: Config, amp: str | bool | None, notes: list[str]) -> None:
    """Mixed precision of a training run: ``amp`` (the ``--amp`` flag) or
    else the config's ``amp`` (default ``'auto'``, :mod:`.amp`)."""
    wrapper = dict(cfg.get('optim_wrapper') or {})
    if not wrapper:
        return
    asked = amp if amp is not None else cfg.get('amp', 'auto')
    choice = choose_amp(asked, wrapper.get('type'))
    cfg.amp = choice.mode if choice.mode != 'config' else 'auto'
    wrapper, problem = apply_amp(wrapper, choice)
    notes.append(problem or choice.message())
    cfg.optim_wrapper = wrapper


def _set_compile(cfg: Config, compile: bool | None) -> None:
    """``compile`` (``--compile``) or the config's ``compile`` (mmengine's
    key: True or torch.compile options) becomes a :class:`CompileHook`
    that falls back to eager, saying why, when compilation fails."""
    options = cfg.get('compile')
    if compile:
        options = options if isinstance(options, dict) else True
    cfg.compile = None  # mmengine would compile without a fallback
    if not options:
        return
    options = dict(options) if isinstance(options, dict) else {}
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='CompileHook', options=options)]


def _place_report_outputs(cfg: Config) -> None:
    """Relative ``out`` files of ``SubgroupMetric``s go under the work
    dir."""
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            evaluator = evaluator['metrics']
        for metric in evaluator if isinstance(evaluator, (list, tuple)) \
                else [evaluator]:
            if isinstance(metric, dict) and metric.get(
                    'type') == 'SubgroupMetric' and metric.get('out') and \
                    not osp.isabs(metric['out']):
                metric['out'] = osp.join(cfg.work_dir, metric['out'])


def build_config(config: str, mode: str, options: RunOptions | None = None,
                 notes: list[str] | None = None) -> Config:
    """The resolved config of a ``train`` or ``test`` run of ``config``;
    what was decided for the run (precision) is appended to ``notes``."""
    options = options or RunOptions()
    notes = [] if notes is None else notes
    cfg = load_config(config, options.cfg_options)
    if options.work_dir:
        cfg.work_dir = options.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(config)
    cfg.launcher = options.launcher
    _add_run_hooks(cfg)
    add_fsdp_hook(cfg)
    if options.launcher == 'pytorch':
        add_sync_buffers_hook(cfg)
    if mode == 'train':
        if options.resume == 'auto':
            # the newest complete checkpoint, not blindly last_checkpoint
            found = (find_resumable_checkpoint(cfg.work_dir)
                     if osp.isdir(cfg.work_dir) else None)
            cfg.resume, cfg.load_from = found is not None, found
            if found is None:
                logger.warning('no complete checkpoint in %s to resume from; '
                               'training from the start', cfg.work_dir)
        elif options.resume is not None:
            path = resolve_checkpoint(options.resume)
            problem = None if '://' in path else checkpoint_problem(path)
            if problem:
                raise CheckpointError(
                    f'cannot resume from {path}: {problem}; pass an older '
                    'checkpoint or --resume alone (the newest complete one)')
            cfg.resume, cfg.load_from = True, path
        _set_amp(cfg, options.amp, notes)
        _set_compile(cfg, options.compile)
    else:
        if options.checkpoint is None:
            raise ValueError('a test run needs a checkpoint')
        cfg.load_from = resolve_checkpoint(options.checkpoint) \
            if options.backend == 'torch' else None
        if options.backend != 'torch':
            _drop_weight_hooks(cfg, options.backend)
        cfg.resume = False
        if cfg.get('optim_wrapper'):  # unused by a test run; CPU-safe type
            cfg.optim_wrapper = apply_amp(
                dict(cfg.optim_wrapper), AmpChoice('config', 'test run'))[0]
        cfg.compile = None
        _add_test_outputs(cfg, options)
    _place_report_outputs(cfg)
    if options.launcher == 'pytorch' and not torch.cuda.is_available():
        cfg.model_wrapper_cfg = cpu_ddp_wrapper_cfg(
            cfg.get('model_wrapper_cfg'),
            bool(cfg.get('find_unused_parameters', False)))
    return cfg


def _add_test_outputs(cfg: Config, options: RunOptions) -> None:
    if options.out:
        evaluator = cfg.get('test_evaluator')
        metrics = evaluator.get('metrics', [evaluator]) if isinstance(
            evaluator, dict) and 'type' not in evaluator else (
            evaluator if isinstance(evaluator, (list, tuple)) else
            [evaluator])
        coco = [m for m in metrics if isinstance(m, dict)
                and m.get('type') == 'CocoMetric']
        if coco:  # detection: COCO results, as mmdet's outfile_prefix
            coco[0]['outfile'] = options.out
        else:
            dump = dict(type='DumpPredictionsJSON', out_file=options.out)
            if isinstance(evaluator, dict) and 'metrics' not in evaluator:
                evaluator = [evaluator]
            if isinstance(evaluator, (list, tuple)):
                cfg.test_evaluator = list(evaluator) + [dump]
            elif isinstance(evaluator, dict):
                evaluator['metrics'] = list(evaluator['metrics']) + [dump]
            else:
                cfg.test_evaluator = [dump]
    if options.show_dir:  # relative: inside the work dir, as mmdet's
        cfg.custom_hooks = list(cfg.custom_hooks) + [
            dict(type='PredictionPicturesHook',
                 out_dir=osp.join(cfg.work_dir, options.show_dir))]


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


def run(config: str, mode: str, options: RunOptions,
        action: Callable[[Any], Any]) -> Any:
    """Build the runner of ``config`` and return ``action(runner)``.

    Raises:
        perception.errors.UserError: bad config, checkpoint, type or launcher
            (mmengine's unknown-type KeyError is translated into one).
    """
    install()
    notes: list[str] = []
    cfg = build_config(config, mode, options, notes)
    with trust_checkpoints(bool(options.trust_checkpoint)), \
            _process_group(options.launcher, cfg):
        try:
            runner_cls = keeping_source_config(_runner_class(cfg))
            runner = private_runner_class(runner_cls, cfg).from_cfg(cfg)
            for note in notes:
                runner.logger.info(note)
            return _guarded(action, runner)
        except KeyError as exc:
            translated = translate_unknown_type(exc)
            if translated is None:
                raise
            raise translated from None


def _guarded(action: Callable[[Any], Any], runner: Any) -> Any:
    """``action(runner)``; a dataloader worker that crashed or hung is
    reported with the sample it was reading."""
    try:
        return action(runner)
    except RuntimeError as exc:
        explain_worker_failure(runner, exc)
        raise


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


def default_work_dir(config: str) -> str:
    """``work_dirs/<config stem>``, where a run of ``config`` writes."""
    return osp.join('work_dirs', osp.splitext(osp.basename(config))[0])
