"""The shared progress helper: plain lines off a terminal, a bar on one,
nothing when quiet, and the summary always."""
from __future__ import annotations

import io

from perception import progress as prog


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal_at_each_tenth():
    out = io.StringIO()
    with prog.progress(total=100, desc='writing', unit='file', stream=out,
                       quiet=False) as bar:
        for _ in range(100):
            bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10, lines
    assert lines[0].startswith('writing: 10/100 file (10%)')
    assert lines[-1].startswith('writing: 100/100 file (100%)')
    assert '\r' not in out.getvalue()  # no bar redraws in a log


def test_iterating_counts_and_closes_with_a_final_line_without_total():
    out = io.StringIO()
    items = list(prog.progress(iter(range(7)), desc='frames', stream=out,
                               quiet=False))
    assert items == list(range(7))
    assert out.getvalue().strip().startswith('frames: 7 it')


def test_quiet_prints_nothing_but_summary_still_prints(monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv('PERCEPTION_QUIET', '1')
    monkeypatch.setattr(prog, '_QUIET', None)
    assert prog.is_quiet()
    with prog.progress(total=5, stream=out) as bar:
        bar.update(5)
    assert out.getvalue() == ''
    prog.summary('wrote 5 files to out/ in 0.1 s', stream=out)
    assert out.getvalue() == 'wrote 5 files to out/ in 0.1 s\n'
    prog.set_quiet(False)
    assert not prog.is_quiet()
    monkeypatch.setattr(prog, '_QUIET', None)


def test_a_terminal_gets_a_tqdm_bar():
    out = FakeTerminal()
    with prog.progress(total=3, desc='bar', stream=out, quiet=False) as bar:
        bar.update(3)
    text = out.getvalue()
    assert '3/3' in text and '\r' in text
