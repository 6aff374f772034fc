"""The label-efficiency study runner behind ``perception benchmark
label-efficiency``: pretrain once without labels, then fine-tune the same
detector on each label fraction from the pretrained encoder and from
scratch, at the same schedule and wall-clock budget, and test every run.

Every run is a ``perception train`` then ``perception test`` subprocess on a
small config written into the study folder (its ``_base_`` is the domain's
detection config; it wraps the training set in ``LabelSubsetDataset`` and
sets the budget and the seed), so each row can be rerun by hand with the
recorded command. A finished run appends one JSON line to ``runs.jsonl``;
a study started again on the same folder (later, or in the background with
``nohup``) skips what is recorded and restarts an interrupted run afresh,
so no run gets more than its budget.
"""
from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Callable, Iterable, Sequence

from perception.engine.label_study_plan import (  # noqa: F401 - re-exported
    ABLATIONS,
    ROWS,
    RunSpec,
    StudyError,
    StudySettings,
    fraction_label,
    parse_fractions,
    plan_runs,
    pretrain_config_text,
    run_config_text,
)
from perception.study_domains import StudyDomain

RECORD = 'runs.jsonl'
SETTINGS = 'study.json'


def call_subprocess(command: list[str], log: str) -> int:
    """Run ``command`` with its output appended to ``log``; its status."""
    with open(log, 'a', encoding='utf-8') as out:
        return subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)


def perception_command(*args: str) -> list[str]:
    return [sys.executable, '-m', 'perception', *args]


def shown(command: Sequence[str]) -> str:
    """A command as a user types it (``perception ...``)."""
    args = list(command)
    if args[:3] == [sys.executable, '-m', 'perception']:
        args = ['perception'] + args[3:]
    return shlex.join(args)


def with_options(command: list[str], options: Sequence[str]) -> list[str]:
    return command + (['--cfg-options', *options] if options else [])


def read_record(study_dir: str) -> dict[str, dict]:
    """Finished runs by id (``runs.jsonl``; a torn last line is ignored)."""
    path = os.path.join(study_dir, RECORD)
    done: dict[str, dict] = {}
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                done[entry['id']] = entry
    return done


def append_record(study_dir: str, entry: dict) -> None:
    """One line per finished run, on a line of its own (after a line torn
    by a kill) and synced, so a later kill cannot lose it."""
    path = os.path.join(study_dir, RECORD)
    torn = False
    if os.path.isfile(path) and os.path.getsize(path):
        with open(path, 'rb') as f:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b'\n'
    with open(path, 'a', encoding='utf-8') as f:
        f.write(('\n' if torn else '') + json.dumps(entry) + '\n')
        f.flush()
        os.fsync(f.fileno())


def test_metrics(test_dir: str) -> dict:
    """The metrics ``perception test`` logged (mmengine's LoggerHook writes
    them as ``<work dir>/<timestamp>/<timestamp>.json``), newest run."""
    files = sorted(glob.glob(os.path.join(test_dir, '*', '*.json')),
                   key=os.path.getmtime)
    if not files:
        raise StudyError(f'{test_dir}: perception test wrote no metrics file')
    with open(files[-1], encoding='utf-8') as f:
        lines = [line for line in f if line.strip()]
    return {k: v for k, v in json.loads(lines[-1]).items()
            if isinstance(v, (int, float))}


def iterations_done(work_dir: str) -> int | None:
    """The iteration (or epoch) of the run's last checkpoint."""
    try:
        with open(os.path.join(work_dir, 'last_checkpoint')) as f:
            name = os.path.basename(f.read().strip())
        return int(name.split('_')[-1].split('.')[0])
    except (OSError, ValueError):
        return None


class Study:
    """One study folder: settings, pretraining, runs, record.

    Args:
        domain: the registered :class:`StudyDomain`.
        study_dir: the folder (created); its ``study.json`` must match.
        settings: budget and overrides (a folder keeps its first ones).
        echo: where progress lines go.
        execute: runs one ``perception`` command (argv, log file) and
            returns its exit status; default: a subprocess.
    """

    def __init__(self, domain: StudyDomain, study_dir: str,
                 settings: StudySettings,
                 echo: Callable[[str], None] = print,
                 execute: Callable[[list[str], str], int] = call_subprocess
                 ) -> None:
        self.domain, self.dir, self.settings = domain, study_dir, settings
        self.echo, self.execute = echo, execute
        self.pretrain_dir = os.path.abspath(os.path.join(study_dir,
                                                         'pretrain'))

    # -- folder ------------------------------------------------------------
    def check_settings(self) -> None:
        """Write ``study.json``, or refuse settings other than its own."""
        os.makedirs(self.dir, exist_ok=True)
        path = os.path.join(self.dir, SETTINGS)
        mine = json.loads(json.dumps(asdict(self.settings)))
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                theirs = json.load(f)
            if theirs != mine:
                diff = ', '.join(f'{k}: {theirs.get(k)!r} there, {v!r} now'
                                 for k, v in mine.items()
                                 if theirs.get(k) != v)
                raise StudyError(f'{path}: this study folder was started with '
                                 f'other settings ({diff}); runs at different '
                                 'budgets do not compare: use those settings '
                                 'or another --work-dir')
            return
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(mine, f, indent=1)

    def lock(self) -> None:
        """One study process per folder (a stale lock is taken over)."""
        path = os.path.join(self.dir, 'study.lock')
        try:
            with open(path) as f:
                pid = int(f.read().strip() or 0)
            if pid and pid != os.getpid():
                os.kill(pid, 0)
                raise StudyError(f'{path}: study process {pid} is running on '
                                 'this folder; wait for it or stop it')
        except (OSError, ValueError):
            pass
        with open(path, 'w') as f:
            f.write(str(os.getpid()))

    def unlock(self) -> None:
        try:
            os.remove(os.path.join(self.dir, 'study.lock'))
        except OSError:
            pass

    # -- commands ----------------------------------------------------------
    def data_commands(self) -> list[list[str]]:
        return [perception_command(*c) for c in self.domain.data_commands]

    def pretrain_commands(self) -> list[list[str]]:
        config = os.path.join(self.dir, 'pretrain.py')
        return [with_options(perception_command(
            'train', config, '--work-dir', self.pretrain_dir),
            self.settings.pretrain_cfg_options)]

    def run_dir(self, spec: RunSpec) -> str:
        return os.path.join(self.dir, 'runs', spec.id)

    def run_commands(self, spec: RunSpec) -> list[list[str]]:
        work = self.run_dir(spec)
        config = os.path.join(work, 'config.py')
        options = list(self.domain.cfg_options) + list(
            self.settings.cfg_options)
        return [with_options(perception_command('train', config,
                                                '--work-dir', work), options),
                with_options(perception_command(
                    'test', config, work, '--work-dir',
                    os.path.join(work, 'test')), options)]

    # -- running -----------------------------------------------------------
    def _call(self, command: list[str], log: str, what: str) -> float:
        start = time.monotonic()
        with open(log, 'a', encoding='utf-8') as out:
            out.write(f'$ {shown(command)}\n')
        status = self.execute(command, log)
        if status != 0:
            with open(log, encoding='utf-8', errors='replace') as f:
                tail = [line.rstrip() for line in f if line.strip()][-1:]
            raise StudyError(f'{what} failed (exit {status}); log: {log}'
                             + (f'; last line: {tail[0]}' if tail else ''))
        return time.monotonic() - start

    def ensure_data(self) -> None:
        missing = [p for p in self.domain.data_check if not os.path.exists(p)]
        if not missing:
            return
        self.echo(f'data missing ({missing[0]}...): generating it')
        os.makedirs(self.dir, exist_ok=True)
        for command in self.data_commands():
            self._call(command, os.path.join(self.dir, 'data.log'),
                       f'`{shown(command)}`')

    def pretrain(self, done: dict) -> None:
        if 'pretrain' in done:
            return
        shutil.rmtree(self.pretrain_dir, ignore_errors=True)
        os.makedirs(self.pretrain_dir)
        with open(os.path.join(self.dir, 'pretrain.py'), 'w') as f:
            f.write(pretrain_config_text(self.domain,
                                         self.settings.pretrain_min))
        self.echo(f'pretraining ({self.settings.pretrain_min:g} min budget)')
        (command, ) = self.pretrain_commands()
        seconds = self._call(command,
                             os.path.join(self.pretrain_dir, 'train.log'),
                             'pretraining')
        entry = dict(id='pretrain', seconds=round(seconds, 1),
                     iterations=iterations_done(self.pretrain_dir),
                     commands=[shown(command)])
        append_record(self.dir, entry)
        done['pretrain'] = entry

    def run_one(self, spec: RunSpec) -> dict:
        """Train and test one run afresh; its record entry."""
        work = self.run_dir(spec)
        shutil.rmtree(work, ignore_errors=True)  # interrupted: start over
        os.makedirs(work)
        with open(os.path.join(work, 'config.py'), 'w') as f:
            f.write(run_config_text(self.domain, spec,
                                    self.settings.budget_min,
                                    self.pretrain_dir))
        train, test = self.run_commands(spec)
        log = os.path.join(work, 'run.log')
        train_s = self._call(train, log, f'run {spec.id} (training)')
        test_s = self._call(test, log, f'run {spec.id} (test)')
        metrics = test_metrics(os.path.join(work, 'test'))
        return dict(id=spec.id, row=spec.row, fraction=spec.fraction,
                    seed=spec.seed, metrics=metrics,
                    train_s=round(train_s, 1), test_s=round(test_s, 1),
                    iterations=iterations_done(work),
                    commands=[shown(train), shown(test)])

    def run(self, runs: Iterable[RunSpec]) -> dict[str, dict]:
        """Pretrain if needed, then every run not yet recorded; the record."""
        runs = list(runs)
        self.check_settings()
        self.lock()
        try:
            done = read_record(self.dir)
            todo = [r for r in runs if r.id not in done]
            self.echo(f'{len(runs) - len(todo)} of {len(runs)} runs already '
                      f'recorded in {os.path.join(self.dir, RECORD)}')
            if todo:
                self.ensure_data()
                if any(ROWS[r.row][0] for r in todo):
                    self.pretrain(done)
            from perception.progress import progress
            with progress(total=len(todo), desc='label-efficiency runs',
                          unit='run') as bar:
                for spec in todo:
                    entry = self.run_one(spec)
                    append_record(self.dir, entry)
                    done[spec.id] = entry
                    metric = self.domain.metrics[0][0]
                    self.echo(f'{spec.id}: {metric} '
                              f"{entry['metrics'].get(metric)} "
                              f"({entry['train_s'] / 60:.1f} min)")
                    bar.update()
            return done
        finally:
            self.unlock()
