"""Fixtures of the whole suite."""
import random
import signal
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def seeded(request):
    """Every test starts from its own fixed seed (python, NumPy, torch),
    derived from its name: a result does not depend on which tests ran
    before it or in what order, and a failure repeats."""
    seed = zlib.crc32(request.node.nodeid.encode())
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    yield


@pytest.fixture(autouse=True, scope='session')
def ctrl_c_delivered():
    """SIGINT handled as Ctrl-C (KeyboardInterrupt), in the suite and in the
    commands its tests start, also where the suite runs as a background job:
    a non-interactive shell's ``&`` (nohup, cron, a CI runner's wrapper)
    starts it with SIGINT ignored, children inherit that, and the interrupt
    tests, which send SIGINT, would see nothing happen."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# Folders of tiny models: they run fastest on one thread; with 2 threads on
# a busy 2-core machine each step waits for the other thread.
ONE_THREAD_FOLDERS = ('models', 'plugins/mim')
_TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def one_thread(request):
    """Torch on one thread for the tests under ``ONE_THREAD_FOLDERS``."""
    folder = Path(request.node.path).parent.relative_to(_TESTS).as_posix()
    if not any(folder == f or folder.startswith(f + '/')
               for f in ONE_THREAD_FOLDERS):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
