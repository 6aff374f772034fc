"""Fixtures of the whole suite."""
import random
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
