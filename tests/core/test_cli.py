"""`--help` of the `perception` command and of every subcommand (core and
plugins)."""
from __future__ import annotations

import pytest

from perception.cli import all_commands, main

COMMANDS = all_commands()


def test_top_level_help_lists_every_subcommand(capsys):
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        COMMANDS[name].main(['--help'])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith('usage: perception ' + name)


def test_train_and_test_document_the_public_options(capsys):
    for name, options in (('train', ('--work-dir', '--resume', '--amp',
                                     '--cfg-options', '--launcher',
                                     '--trust-checkpoint')),
                          ('test', ('--work-dir', '--out', '--show-dir',
                                    '--cfg-options', '--launcher',
                                    '--trust-checkpoint'))):
        with pytest.raises(SystemExit):
            COMMANDS[name].main(['--help'])
        out = capsys.readouterr().out
        for option in options:
            assert option in out, (name, option)


def test_benchmark_help_after_a_name_shows_that_benchmarks_options(capsys):
    from perception.benchmarks import all_benchmarks
    for name, bench in all_benchmarks().items():
        for argv in ([name, '--help'], ['--quiet', name, 'ARG', '-h']):
            with pytest.raises(SystemExit) as info:
                COMMANDS['benchmark'].main(argv)
            assert info.value.code == 0
            out = capsys.readouterr().out
            assert out.startswith(f'usage: perception benchmark {name}'), \
                (argv, out[:80])
    with pytest.raises(SystemExit):  # no name: the command's own help
        COMMANDS['benchmark'].main(['--help'])
    assert '--list' in capsys.readouterr().out
    from perception.progress import is_quiet
    assert not is_quiet(), '--quiet with --help must not silence later work'


@pytest.mark.parametrize('tool, name', [('train.py', 'train'),
                                        ('test.py', 'test'),
                                        ('benchmark.py', 'benchmark')])
def test_tools_scripts_are_the_cli(tool, name, monkeypatch, capsys):
    import runpy
    from pathlib import Path
    script = Path(__file__).resolve().parents[2] / 'tools' / tool
    monkeypatch.setattr('sys.argv', [str(script), '--help'])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(script), run_name='__main__')
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith('usage: perception ' + name)


def test_help_lists_every_plugin_command_without_importing_torch():
    """`perception --help` stays fast: command modules import no torch, and
    no plugin's classes are loaded, yet every plugin's commands are listed."""
    import subprocess
    import sys
    code = ('import sys\n'
            'from perception.cli import main\n'
            'assert main(["--help"]) == 0\n'
            'heavy = [m for m in ("torch", "pydicom", "cv2", "timm") '
            'if m in sys.modules]\n'
            'assert not heavy, heavy\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ('train', 'test', 'browse', 'plugins', 'benchmark',
                 'synth-images', 'synth-mim', 'export-backbone',
                 'synth-drive', 'synth-ct', 'deid'):
        assert f'    {name}' in result.stdout, name


def test_unknown_command_is_one_line_with_close_matches(capsys):
    assert main(['trian']) == 2
    err = capsys.readouterr().err
    assert err.startswith("perception: error: unknown command 'trian'.")
    assert 'Did you mean: train' in err and len(err.splitlines()) == 1


def test_user_error_is_one_line_exit_2_and_a_bug_is_a_traceback(
        tmp_path, capsys, monkeypatch):
    assert main(['train', str(tmp_path / 'missing.py')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('perception train: error: ') and \
        'missing.py' in err and 'Traceback' not in err
    from perception.cli import runs

    def broken(*args, **kwargs):
        raise RuntimeError('an internal bug')
    monkeypatch.setattr('perception.apis.train', broken)
    assert runs.TrainCommand().main([str(tmp_path / 'x.py')]) == 1
    err = capsys.readouterr().err
    assert 'Traceback' in err and 'RuntimeError: an internal bug' in err
