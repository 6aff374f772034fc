"""TimeBudgetHook stops a run when its wall-clock budget is spent and leaves
a checkpoint there that last_checkpoint names."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from perception.engine.config import ConfigError
from perception.engine.hooks import TimeBudgetHook


class _Runner:
    def __init__(self, work_dir) -> None:
        self.work_dir = str(work_dir)
        self.train_loop = SimpleNamespace(stop_training=False)
        self.iter, self.epoch = 0, 3
        self.saved: list[str] = []
        self.logger = SimpleNamespace(info=lambda message: None)

    def save_checkpoint(self, out_dir, filename, by_epoch=True) -> None:
        self.saved.append(filename)


def test_stops_after_the_budget_and_names_the_checkpoint(tmp_path):
    runner = _Runner(tmp_path)
    hook = TimeBudgetHook(minutes=0.001)  # 60 ms
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)
    assert not runner.train_loop.stop_training  # budget not spent yet
    time.sleep(0.1)
    hook.after_train_iter(runner, 1)
    assert runner.train_loop.stop_training
    hook.after_train_epoch(runner)
    assert runner.saved == ['budget_epoch_3.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith(
        'budget_epoch_3.pth')
    hook.after_train(runner)  # saved once only
    assert runner.saved == ['budget_epoch_3.pth']


def test_iteration_based_runs_save_at_the_end(tmp_path):
    runner = _Runner(tmp_path)
    runner.iter = 41
    hook = TimeBudgetHook(minutes=1e-6)
    hook.before_train(runner)
    time.sleep(0.01)
    hook.after_train_iter(runner, 0)
    hook.after_train(runner)
    assert runner.saved == ['budget_iter_41.pth']


def test_a_budget_must_be_positive():
    with pytest.raises(ConfigError, match='minutes must be > 0'):
        TimeBudgetHook(minutes=0)
