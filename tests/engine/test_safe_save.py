"""Checkpoints cannot be half-written: atomic saves through the real mmengine
Runner, --resume from the newest complete checkpoint, a full disk that
stops the run in one line with the previous checkpoint intact, and runs
killed with SIGKILL (also while saving) that resume to the weights of an
uninterrupted run, bitwise."""
from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from perception.cli import all_commands
from perception.data import write_shape_images
from perception.engine.safe_save import PAUSE_ENV, checkpoint_problem

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / 'configs' / 'smoke' / 'tiny_classifier.py'


@pytest.fixture(scope='module')
def shapes(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('shapes')
    write_shape_images(str(root), n_per_class=4, size=32, seed=0)
    return str(root)


def write_config(folder: Path, data_root: str, epochs: int) -> str:
    """The smoke config on 12 images, 3 iterations per epoch, with timm's
    ``test_resnet`` (checkpoints of 0.5 MB, not 60: these tests save
    often); RandomFlip kept, so resuming must restore the random
    generators too."""
    path = folder / f'kill_{epochs}.py'
    path.write_text('\n'.join([
        f'_base_ = [{str(SMOKE)!r}]',
        f'data_root = {data_root!r}',
        "model = dict(model_name='test_resnet')",
        'train_dataloader = dict(batch_size=4, dataset=dict('
        'data_root=data_root))',
        'val_dataloader = dict(batch_size=12, dataset=dict('
        'data_root=data_root))',
        'test_dataloader = val_dataloader',
        f'train_cfg = dict(max_epochs={epochs})',
        "param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, "
        f'T_max={epochs}, begin=0, end={epochs}, eta_min=1e-5)]',
        "vis_backends = [dict(type='LocalVisBackend')]",
        'visualizer = dict(vis_backends=vis_backends)',
    ]) + '\n')
    return str(path)


def run(command: str, *argv) -> int:
    return all_commands()[command].main([str(a) for a in argv])


def weights(path: str) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)['state_dict']


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f'{len(different)} tensors differ, e.g. {different[:3]}'


# -- completeness -------------------------------------------------------------


def test_checkpoint_problem_finds_torn_and_flipped_files(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save({'state_dict': {'w': torch.arange(1000.)}}, path)
    assert checkpoint_problem(str(path)) is None
    data = path.read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    assert 'cut short' in checkpoint_problem(str(tmp_path / 'cut.pth'))
    flipped = bytearray(data)
    start = data.index(b'\x00\x00\x80?')  # inside the tensor's bytes
    flipped[start + 2] ^= 0xFF
    (tmp_path / 'flip.pth').write_bytes(bytes(flipped))
    assert 'corrupt' in checkpoint_problem(str(tmp_path / 'flip.pth'))
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert 'empty' in checkpoint_problem(str(tmp_path / 'empty.pth'))


@pytest.fixture(scope='module')
def two_epochs(tmp_path_factory, shapes) -> Path:
    """A 2-epoch run never stopped (the reference of the resume tests)."""
    folder = tmp_path_factory.mktemp('two_epochs')
    cfg = write_config(folder, shapes, 2)
    assert run('train', cfg, '--work-dir', folder / 'whole') == 0
    return folder


def test_resume_skips_a_torn_newest_checkpoint_and_ends_bitwise_equal(
        tmp_path, two_epochs, caplog):
    """epoch_2.pth torn as by a crash: --resume warns, resumes from epoch 1
    and writes epoch 2 again, bitwise equal to the run never stopped
    (RandomFlip draws from Python's generator: RandomStateHook restores
    it)."""
    import shutil
    work = tmp_path / 'cut'
    shutil.copytree(two_epochs / 'whole', work)
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    newest = work / 'epoch_2.pth'
    newest.write_bytes(newest.read_bytes()[:100_000])
    with caplog.at_level(logging.WARNING, logger='perception'):
        assert run('train', str(two_epochs / 'kill_2.py'), '--work-dir',
                   work, '--resume') == 0
    assert any('epoch_2.pth' in r.getMessage() and 'skipping' in
               r.getMessage() for r in caplog.records)
    assert checkpoint_problem(str(newest)) is None
    assert torch.load(newest, weights_only=True)['meta']['epoch'] == 2
    assert_bitwise_equal(weights(str(two_epochs / 'whole' / 'epoch_2.pth')),
                         weights(str(newest)))


def test_resume_from_a_named_torn_checkpoint_is_one_line(tmp_path, shapes,
                                                         capsys):
    cfg = write_config(tmp_path, shapes, 2)
    torn = tmp_path / 'torn.pth'
    torn.write_bytes(b'PK\x03\x04' + b'\0' * 100)
    assert run('train', cfg, '--work-dir', tmp_path / 'w', '--resume',
               torn) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(torn) in err


# -- a full disk -------------------------------------------------------------


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A real tmpfs of ``size`` at ``folder`` (needs root), else None."""
    folder.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}',
                              'tmpfs', str(folder)], capture_output=True
                             ).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(['umount', '-l', str(folder)], check=False)


def test_full_disk_keeps_the_previous_checkpoint_and_stops(
        tmp_path, shapes, two_epochs, capsys, monkeypatch):
    cfg = write_config(tmp_path, shapes, 2)
    size = os.path.getsize(two_epochs / 'whole' / 'epoch_1.pth')
    work = tmp_path / 'disk'
    # room for one checkpoint and the logs, not for two
    with small_disk(work, f'{int(size * 1.5) // 1024}k') as mounted:
        if not mounted:  # no root: the second save's write fails half-way
            real_write = os.write

            def write(fd, data):
                name = os.readlink(f'/proc/self/fd/{fd}')
                if 'epoch_2.pth' in name and '.tmp-' in name:
                    real_write(fd, bytes(data[:len(data) // 2]))
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_write(fd, data)
            monkeypatch.setattr(os, 'write', write)
        status = run('train', cfg, '--work-dir', work)
        err = capsys.readouterr().err.strip()
        assert status == 2, err
        assert len(err.splitlines()) == 1, err
        assert 'no space left' in err and 'epoch_1.pth is intact' in err
        assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']
        assert not glob.glob(str(work / '.*.tmp-*'))
        assert (work / 'last_checkpoint').read_text().strip().endswith(
            'epoch_1.pth')
        assert checkpoint_problem(str(work / 'epoch_1.pth')) is None
        weights(str(work / 'epoch_1.pth'))  # loads


# -- SIGKILL at random moments -----------------------------------------------


class Zygote:
    """Forks training processes from one that imported everything once
    (tests/engine/train_zygote.py), so a launch takes a second, not ten."""

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name('train_zygote.py'))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            cwd=str(REPO))
        assert self._read() == {'ready': True}

    def _read(self) -> dict:
        import json
        line = self.proc.stdout.readline()
        assert line, 'the zygote died'
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        import json
        self.proc.stdin.write(json.dumps(request) + '\n')
        self.proc.stdin.flush()
        return self._read()

    def train(self, cfg: str, work: Path, log: Path) -> int:
        argv = ['train', cfg, '--work-dir', str(work), '--resume']
        return self._ask(dict(run=argv, env={PAUSE_ENV: '0.3'},
                              log=str(log)))['pid']

    def wait(self, pid: int) -> int:
        return self._ask(dict(wait=pid))['status']

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _running(pid: int) -> bool:
    with open(f'/proc/{pid}/stat') as f:
        return f.read().rsplit(')', 1)[1].split()[0] != 'Z'


def _kill_while_saving(pid: int, work: Path, saves: int,
                       rng: random.Random) -> bool:
    """SIGKILL during the ``saves``-th checkpoint save of this launch (its
    temporary file present). False if the run ended first."""
    seen, previous = 0, set()
    while _running(pid):
        temps = set(glob.glob(str(work / '.*.pth.tmp-*')))
        if temps - previous:
            seen += 1
            if seen == saves:
                time.sleep(rng.uniform(0.0, 0.25))
                os.kill(pid, signal.SIGKILL)
                return True
        previous = temps
        time.sleep(0.005)
    return False


def _kill_at_random(pid: int, rng: random.Random) -> bool:
    deadline = time.monotonic() + rng.uniform(0.3, 4.0)
    while time.monotonic() < deadline:
        if not _running(pid):
            return False
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    return True


def killed_run_matches_uninterrupted(tmp_path, shapes, kills: int,
                                     epochs: int, seed: int) -> dict:
    """Train ``epochs`` once without and once with ``kills`` SIGKILLs
    (every other one while a checkpoint is being written), resuming after
    each; the final weights must be equal bitwise."""
    cfg = write_config(tmp_path, shapes, epochs)
    rng = random.Random(seed)
    zygote = Zygote()
    work = tmp_path / 'killed'
    counts = dict(kills=0, while_saving=0, at_random=0, launches=1)
    try:
        assert zygote.wait(zygote.train(cfg, tmp_path / 'ref',
                                        tmp_path / 'ref.log')) == 0
        while counts['kills'] < kills:
            assert counts['launches'] < 4 * kills + 4, f'no kill landed: {counts}'
            pid = zygote.train(cfg, work, tmp_path / 'killed.log')
            counts['launches'] += 1
            saving = counts['kills'] % 2 == 0
            killed = (_kill_while_saving(pid, work, rng.choice([1, 2]), rng)
                      if saving else _kill_at_random(pid, rng))
            status = zygote.wait(pid)
            if not killed:  # it finished first: train again from nothing
                assert status == 0
                for path in work.glob('*.pth'):
                    path.unlink()
                (work / 'last_checkpoint').unlink()
                continue
            assert status == -signal.SIGKILL
            counts['kills'] += 1
            counts['while_saving' if saving else 'at_random'] += 1
        counts['launches'] += 1
        assert zygote.wait(zygote.train(cfg, work,
                                        tmp_path / 'killed.log')) == 0
    finally:
        zygote.close()
    final = f'epoch_{epochs}.pth'
    assert_bitwise_equal(weights(str(tmp_path / 'ref' / final)),
                         weights(str(work / final)))
    return counts


@pytest.mark.timeout(900)  # six runs: can pass 300 s on busy cores
def test_killed_runs_resume_to_the_same_weights(tmp_path, shapes):
    counts = killed_run_matches_uninterrupted(tmp_path, shapes, kills=3,
                                              epochs=3, seed=1)
    assert counts['while_saving'] == 2 and counts['at_random'] == 1


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_twelve_kills_resume_to_the_same_weights(tmp_path, shapes):
    counts = killed_run_matches_uninterrupted(tmp_path, shapes, kills=12,
                                              epochs=6, seed=2)
    print('kill loop:', counts)
    assert counts['while_saving'] == 6 and counts['at_random'] == 6
