"""`--help` of the `perception` command and of every subcommand (core and
plugins)."""
from __future__ import annotations

import pytest

from perception.cli import main
from perception.commands import all_commands

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
