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
