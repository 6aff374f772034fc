"""Long commands show progress through perception.progress: plain lines (no
bar redraws) when stderr is not a terminal, nothing with --quiet, and one
closing summary line on stdout either way."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from perception.cli import main

PLAIN_LINE = re.compile(r'^[\w :-]+: \d+(/\d+)? \w+')


def _check_plain(stderr: str, desc: str) -> list[str]:
    assert '\r' not in stderr and '\x1b[' not in stderr  # no bar redraws
    lines = [line for line in stderr.splitlines() if line.startswith(desc)]
    assert lines, stderr
    assert all(PLAIN_LINE.match(line) for line in lines), lines
    return lines


def test_synth_images_in_a_pipe_prints_plain_lines_then_a_summary(tmp_path):
    env = dict(os.environ, PERCEPTION_QUIET='')
    command = [sys.executable, '-m', 'perception', 'synth-images',
               str(tmp_path / 'a'), '--n-per-class', '10', '--size', '16']
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = _check_plain(done.stderr, 'synth-images')
    assert lines[-1].startswith('synth-images: 30/30 image (100%)')
    assert 2 <= len(lines) <= 11  # a line per tenth at most, not per image
    last = done.stdout.strip().splitlines()[-1]
    assert re.match(r'synth-images: wrote 30 images \(3 classes x 10, 16 px\)'
                    rf' to {re.escape(str(tmp_path / "a"))} in [\d.]+ s$',
                    last), last
    quiet = subprocess.run(command[:-5] + [str(tmp_path / 'b')] +
                           command[-4:] + ['--quiet'], capture_output=True,
                           text=True, env=env, timeout=120)
    assert quiet.returncode == 0 and 'synth-images:' not in quiet.stderr
    assert quiet.stdout.strip().startswith('synth-images: wrote 30 images')


def test_synth_drive_shows_rendering_and_writing(tmp_path, capsys):
    pytest.importorskip('perception_driving')
    assert main(['synth-drive', str(tmp_path / 'd'), '--frames', '3',
                 '--size', '64', '48', '--cameras', '1', '--formats',
                 'kitti', 'bdd100k']) == 0
    out, err = capsys.readouterr()
    rendering = _check_plain(err, 'synth-drive: rendering')
    assert rendering[-1].startswith('synth-drive: rendering: 3/3 frame')
    writing = _check_plain(err, 'synth-drive: writing')
    assert writing[-1].startswith('synth-drive: writing: 3/3 format')
    last = out.strip().splitlines()[-1]
    assert re.match(r'synth-drive: wrote 3 frames x 1 camera\(s\) \(front\), '
                    r'\d+ boxes, day, clear, seed 0, in \d+ formats to '
                    rf'{re.escape(str(tmp_path / "d"))} in [\d.]+ s$', last)


def test_synth_mim_and_quiet(tmp_path, capsys):
    pytest.importorskip('perception_mim')
    assert main(['synth-mim', str(tmp_path / 'm'), '--n-train', '6',
                 '--n-val', '2', '--size', '32']) == 0
    out, err = capsys.readouterr()
    assert _check_plain(err, 'synth-mim: train')[-1].startswith(
        'synth-mim: train: 6/6 image')
    assert _check_plain(err, 'synth-mim: val')[-1].startswith(
        'synth-mim: val: 2/2 image')
    assert out.strip().splitlines()[-1].startswith(
        'synth-mim: wrote 6 training and 2 held-out 32x32 images under ')
    assert main(['synth-mim', str(tmp_path / 'q'), '--n-train', '3',
                 '--n-val', '1', '--size', '32', '--quiet']) == 0
    out, err = capsys.readouterr()
    assert 'synth-mim' not in err and 'wrote 3 training' in out


def test_benchmark_runs_show_progress_outside_the_timings(capsys):
    from perception.benchmarks import interleave
    calls = []
    timings = interleave({'a': lambda: calls.append('a'),
                          'b': lambda: calls.append('b')}, repeats=3,
                         warmup=1, desc='benchmark demo')
    assert calls == ['a', 'b'] * 4
    assert [len(t.seconds) for t in timings.values()] == [3, 3]
    lines = _check_plain(capsys.readouterr().err, 'benchmark demo')
    assert lines[-1].startswith('benchmark demo: 8/8 run (100%)')
