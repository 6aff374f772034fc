"""mmengine fixes for newer Pythons: the Runner's environment report
survives a missing distutils (Python 3.12+ without setuptools)."""
from __future__ import annotations

import sys

import perception.engine

perception.engine.install()  # explicitly, as every run does


def test_env_report_without_distutils(monkeypatch):
    from mmengine.runner import runner as mm_runner
    assert mm_runner.collect_env().get('PyTorch')
    monkeypatch.setitem(sys.modules, 'distutils', None)  # import fails
    env = mm_runner.collect_env()
    assert env['PyTorch'] and env['MMEngine']
    assert 'distutils' in env['Note']
