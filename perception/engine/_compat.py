"""mmengine 0.10.7 on newer Pythons, patched inside perception only.

``Runner`` logs ``collect_env()``, which imports ``distutils`` (gone from
the standard library since Python 3.12, present only with setuptools);
without it every run would fail before training. We fall back to the
essential facts instead.
"""
from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Callable


def _tolerant(collect_env: Callable[[], dict]) -> Callable[[], dict]:
    def collect_env_without_distutils() -> dict:
        try:
            return collect_env()
        except ModuleNotFoundError as exc:
            if exc.name != 'distutils':
                raise
            import mmengine
            import torch
            return OrderedDict([
                ('sys.platform', sys.platform),
                ('Python', sys.version.replace('\n', '')),
                ('CUDA available', torch.cuda.is_available()),
                ('PyTorch', torch.__version__),
                ('MMEngine', mmengine.__version__),
                ('Note', 'compiler details left out: distutils is missing '
                 '(Python 3.12+ without setuptools)'),
            ])
    collect_env_without_distutils.perception_patched = True
    return collect_env_without_distutils


def install() -> None:
    """Patch mmengine's Runner module (idempotent; called by
    :func:`perception.engine.install`)."""
    from mmengine.runner import runner as mm_runner
    if not getattr(mm_runner.collect_env, 'perception_patched', False):
        mm_runner.collect_env = _tolerant(mm_runner.collect_env)
