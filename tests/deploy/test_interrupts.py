"""CtrlC (SIGINT during `perception infer`): raised at once outside a
writing block, held to the end of one, later signals dropped, the previous
handler restored; nothing installed off the main thread."""
from __future__ import annotations

import signal
import threading

import pytest

from perception.deploy.interrupts import CtrlC


def test_sigint_outside_a_writing_block_raises_at_once():
    handler = signal.getsignal(signal.SIGINT)
    steps = []
    with CtrlC() as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
            steps.append('after the signal')
        assert ctrl_c.interrupted and steps == []
        signal.raise_signal(signal.SIGINT)  # the second one is dropped
        assert ctrl_c.received == 2
    assert signal.getsignal(signal.SIGINT) is handler


def test_sigint_in_a_writing_block_is_held_to_its_end():
    steps = []
    with CtrlC() as ctrl_c:
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c.writing():
                steps.append('record')
                signal.raise_signal(signal.SIGINT)
                steps.append('queue the MP4 frame')
                signal.raise_signal(signal.SIGINT)  # dropped
                steps.append('done')
        assert steps == ['record', 'queue the MP4 frame', 'done']
        assert ctrl_c.received == 2 and ctrl_c.interrupted
        with ctrl_c.writing():  # after the first: nothing raises
            signal.raise_signal(signal.SIGINT)
        assert ctrl_c.received == 3


def test_sigint_while_ignored_is_dropped_and_does_not_count_as_interrupt():
    with CtrlC() as ctrl_c:
        with ctrl_c.ignored():
            with ctrl_c.writing():
                signal.raise_signal(signal.SIGINT)
        assert ctrl_c.received == 1 and not ctrl_c.interrupted
        with pytest.raises(KeyboardInterrupt):  # live again after it
            signal.raise_signal(signal.SIGINT)


def test_off_the_main_thread_nothing_is_installed():
    handler = signal.getsignal(signal.SIGINT)
    seen = {}

    def work():
        with CtrlC() as ctrl_c:
            with ctrl_c.writing():
                seen['installed'] = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen['installed'] is handler
