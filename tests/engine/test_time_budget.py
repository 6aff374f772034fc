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
    hook.after_train_epoch(runner)  # epoch index 3 done: the 4th epoch
    assert runner.saved == ['budget_epoch_4.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith(
        'budget_epoch_4.pth')
    hook.after_train(runner)  # saved once only
    assert runner.saved == ['budget_epoch_4.pth']


def test_iteration_based_runs_save_at_the_end(tmp_path):
    runner = _Runner(tmp_path)
    runner.iter = 41
    hook = TimeBudgetHook(minutes=1e-6)
    hook.before_train(runner)
    time.sleep(0.01)
    hook.after_train_iter(runner, 0)
    hook.after_train(runner)
    assert runner.saved == ['budget_iter_41.pth']


def test_iteration_loop_end_is_named_by_iteration(tmp_path):
    """mmengine's IterBasedTrainLoop calls after_train_epoch once at its
    end: the checkpoint is still named by the iteration (was
    budget_epoch_0.pth at iteration 271), which the label-efficiency study
    reads as the run's length."""
    from mmengine.runner import IterBasedTrainLoop

    from perception.engine.label_study import iterations_done
    runner = _Runner(tmp_path)
    runner.iter, runner.epoch = 271, 0
    runner.train_loop = object.__new__(IterBasedTrainLoop)  # isinstance only
    hook = TimeBudgetHook(minutes=1e-6)
    hook.before_train(runner)
    time.sleep(0.01)
    hook.after_train_iter(runner, 0)
    hook.after_train_epoch(runner)
    hook.after_train(runner)
    assert runner.saved == ['budget_iter_271.pth']
    assert iterations_done(str(tmp_path)) == 271


def test_a_budget_must_be_positive():
    with pytest.raises(ConfigError, match='minutes must be > 0'):
        TimeBudgetHook(minutes=0)
