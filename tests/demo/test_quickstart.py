"""The README's Quickstart commands are the ones the Makefile defines and
CI runs: `make demo` (the whole demo) and `make test` (the suite)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quickstart_commands() -> list[str]:
    """The commands of the first shell block under '## Quickstart'."""
    text = (ROOT / 'README.md').read_text()
    section = text.split('\n## Quickstart', 1)[1].split('\n## ', 1)[0]
    block = re.search(r'```(?:bash|sh)\n(.*?)```', section, re.S).group(1)
    return [line.split('#', 1)[0].strip() for line in block.splitlines()
            if line.split('#', 1)[0].strip()]


def make_recipe(target: str) -> list[str]:
    """The recipe lines of ``target`` in the Makefile."""
    lines = (ROOT / 'Makefile').read_text().splitlines()
    start = next(i for i, line in enumerate(lines)
                 if re.match(rf'{re.escape(target)}\s*:', line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith('\t'):
            break
        recipe.append(line.strip())
    return recipe


def test_quickstart_is_make_demo_and_make_test():
    assert quickstart_commands() == ['make demo', 'make test']


def test_make_demo_runs_the_whole_demo_and_make_test_the_suite():
    assert make_recipe('demo') == ['$(BIN)/perception demo all']
    assert make_recipe('test') == ['$(BIN)/python -m pytest -q']
    ci = (ROOT / '.ci' / 'run').read_text().splitlines()
    assert 'make test' in [line.strip() for line in ci]
