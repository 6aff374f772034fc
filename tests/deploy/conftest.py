"""Deploy-test fixtures: a tiny detector exported to a bundle (helpers in
deploy_helpers.py; the driving tests' writers and loopback servers are
importable too)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'plugins', 'driving'))

import pytest  # noqa: E402
from deploy_helpers import make_bundle, pretrained_cfg, tiny_detector  # noqa: E402


@pytest.fixture(scope='session')
def camera_bundle(tmp_path_factory):
    """(bundle folder, eager model, its PretrainedCfg): fit into 96x64,
    pad to 32, mean/std normalization."""
    model = tiny_detector()
    cfg = pretrained_cfg(model)
    return make_bundle(tmp_path_factory.mktemp('bundle') / 'b', model,
                       cfg), model, cfg
