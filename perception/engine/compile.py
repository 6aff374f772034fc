"""A compiled training step that falls back to eager, saying why.

``compile=True`` (or a dict of ``torch.compile`` options) in a config, or
``perception train --compile``, adds :class:`CompileHook` (launch.py takes
the key from mmengine, which would compile without a fallback). The hook
compiles the model's ``train_step`` before training; ``torch.compile`` is
lazy, so a failure shows up at the first step: the hook's wrapper then logs
the reason once and runs that step, and every later one, eagerly. Only
errors raised by the compiler stack (``torch._dynamo``, ``torch._inductor``)
cause the fallback; an error of the model itself propagates as it would
uncompiled.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import torch
from mmengine.hooks import Hook

from perception.registry import HOOKS

logger = logging.getLogger('perception')

_COMPILER_MODULES = ('torch._dynamo', 'torch._inductor', 'torch._subclasses',
                     'torch.fx')


def is_compiler_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from torch's compiler stack."""
    return any(type(exc).__module__.startswith(m) for m in _COMPILER_MODULES)


def _reason(exc: BaseException) -> str:
    """One line: the error, and the compiler's own error inside it."""
    inner = getattr(exc, 'inner_exception', None) or exc.__cause__
    parts = [type(exc).__name__]
    for err in (inner, ) if inner is not None else (exc, ):
        text = str(err).strip().splitlines()
        if err is not exc:
            parts.append(type(err).__name__)
        if text:
            parts.append(text[0])
    return ': '.join(parts)


def guarded_compile(fn: Callable, options: dict | None = None,
                    log: Callable[[str], Any] = logger.warning) -> Callable:
    """``torch.compile(fn, **options)`` that runs ``fn`` eagerly (after
    one ``log`` line saying why) when compilation fails, at once or at a
    call."""
    try:
        compiled = torch.compile(fn, **(options or {}))
    except Exception as exc:  # bad options, no dynamo on this platform
        log(f'compile: torch.compile failed ({_reason(exc)}); training '
            'eagerly')
        return fn
    active = [compiled]

    def step(*args, **kwargs):
        if active[0] is fn:
            return fn(*args, **kwargs)
        try:
            return active[0](*args, **kwargs)
        except Exception as exc:
            if not is_compiler_error(exc):
                raise
            log(f'compile: compiling the training step failed '
                f'({_reason(exc)}); training eagerly from here on')
            active[0] = fn
            return fn(*args, **kwargs)

    step.compiled = compiled  # type: ignore[attr-defined]
    step.is_eager = lambda: active[0] is fn  # type: ignore[attr-defined]
    return step


@HOOKS.register_module()
class CompileHook(Hook):
    """Compile ``runner.model.train_step`` with :func:`guarded_compile`.

    Args:
        options: ``torch.compile`` keyword arguments (``backend``,
            ``mode``, ``dynamic``, ...).
    """

    priority = 'VERY_LOW'  # after hooks that replace or wrap the model

    def __init__(self, options: dict | None = None) -> None:
        self.options = dict(options or {})

    def before_train(self, runner) -> None:
        model = runner.model
        if getattr(model.train_step, 'compiled', None) is not None:
            return  # resumed inside one process: already wrapped
        shown = ', '.join(f'{k}={v!r}' for k, v in self.options.items())
        runner.logger.info(f'compile: torch.compile of train_step'
                           f"{' (' + shown + ')' if shown else ''}; the "
                           'first steps are slow while it compiles')
        model.train_step = guarded_compile(
            model.train_step, self.options,
            lambda line: runner.logger.warning(line))
