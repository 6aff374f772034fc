"""perception.engine.privacy: redacted configs and logs, real Runner."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mmengine.config import Config

from perception.data.synth import write_shape_images
from perception.engine.privacy import (
    Redactor,
    install_log_filter,
    private_runner_class,
    redact_config,
    redactor_for,
)

REPO = Path(__file__).resolve().parents[2]


def test_redactor_replaces_values_and_path_tails():
    r = Redactor(['/data/DOE_JOHN', 'ACME-HOSP'])
    text = r.text("read '/data/DOE_JOHN/sub/x.dcm' at ACME-HOSP, ok")
    assert 'DOE_JOHN' not in text and 'ACME' not in text and 'sub/x.dcm' not in text
    assert text.startswith("read '<redacted:") and text.endswith(', ok')
    assert r.token('a') == r.token('a') != r.token('b')
    # whole words and paths only: a short root does not eat other words
    short = Redactor(['data'])
    assert short.text('data_time: 1 metadata') == 'data_time: 1 metadata'
    assert 'data' not in short.text('read data/ct/1.dcm and data.').replace('.', '')
    assert Redactor(['/x/PHI_DIR/']).text('/x/PHI_DIR/a.png ok').endswith(' ok')
    assert 'PHI' not in Redactor(['/x/PHI_DIR/']).text('/x/PHI_DIR/a.png ok')
    assert r.value({'a': ['/data/DOE_JOHN/1', 3], 'b': ('ACME-HOSP', )}) == {
        'a': [r.token('/data/DOE_JOHN/1'), 3], 'b': (r.token('ACME-HOSP'), )}


def test_redactor_for_collects_nested_keys_and_defaults():
    cfg = Config(dict(
        privacy=dict(redact_keys=('data_root', 'data_prefix'), redact_values=['Dr X']),
        train_dataloader=dict(dataset=dict(type='D', data_root='rt/JANE_ROE',
                                           data_prefix=dict(img='imgs/P001'))),
        model=dict(type='M', depth=2)))
    r = redactor_for(cfg)
    assert {'rt/JANE_ROE', 'imgs/P001', 'Dr X'} <= r.values
    shown = redact_config(cfg, r)
    assert 'JANE_ROE' not in shown.pretty_text and 'P001' not in shown.pretty_text
    assert shown.model.depth == 2 and shown.filename == cfg.filename
    assert cfg.train_dataloader.dataset.data_root == 'rt/JANE_ROE'  # real one kept
    assert redactor_for(Config(dict(model=dict()))) is None
    # an empty section: the default keys (data_root, ann_file, ...)
    assert 'abcd' in redactor_for(Config(dict(privacy=dict(), data_root='abcd'))).values
    assert 'abcd' not in redactor_for(Config(dict(
        privacy=dict(redact_keys=['x']), data_root='abcd'))).values
    with pytest.raises(ValueError, match='privacy'):  # ConfigError
        redactor_for(Config(dict(privacy='yes')))


def test_components_declare_private_args(monkeypatch):
    from perception.engine import privacy
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='ImageFolderDataset', data_root='/arch/ROE_JANE', pipeline=[]))))
    assert redactor_for(cfg) is None
    monkeypatch.setitem(privacy._PRIVATE_ARGS, 'ImageFolderDataset', ('data_root', ))
    assert '/arch/ROE_JANE' in redactor_for(cfg).values  # no privacy section needed
    cfg.privacy = dict(enabled=False)
    assert redactor_for(cfg) is None


def test_log_filter_rewrites_records(tmp_path):
    logger = logging.getLogger('perception.test_privacy')
    handler = logging.FileHandler(tmp_path / 'log.txt')
    logger.addHandler(handler)
    try:
        install_log_filter(logger, Redactor(['/srv/SMITH_ANNA']))
        logger.warning('skipped %s: bad', '/srv/SMITH_ANNA/s1/f.dcm')
        handler.flush()
    finally:
        logger.removeHandler(handler)
    text = (tmp_path / 'log.txt').read_text()
    assert 'SMITH' not in text and 'skipped <redacted:' in text and ': bad' in text


def _scan(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob('*'):
        if any(n in str(path.relative_to(root)) for n in needles):
            hits.append(f'name: {path}')
        if path.is_file():
            data = path.read_bytes()
            hits += [f'{n} in {path}' for n in needles if n.encode() in data]
    return hits


def test_runner_outputs_hold_no_redacted_value(tmp_path):
    from mmengine.runner import Runner
    data_root = tmp_path / 'PHI_DOE_JOHN_1961'
    write_shape_images(str(data_root), n_per_class=2, size=32)
    cfg = Config.fromfile(str(REPO / 'configs/smoke/tiny_classifier.py'))
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[split].dataset.data_root = str(data_root)
        cfg[split].batch_size = 2
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg = dict(by_epoch=False, max_iters=2, val_interval=100)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2, by_epoch=False)
    cfg.default_hooks.logger.interval = 1
    cfg.param_scheduler = []
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.privacy = dict(redact_keys=('data_root', ))
    runner = private_runner_class(Runner, cfg).from_cfg(cfg)
    assert runner.train_dataloader.dataset.data_root == str(data_root)
    runner.logger.info(f'a path under the root: {data_root}/circle/0.png')
    runner.train()
    written = list((tmp_path / 'work').rglob('*'))
    assert any(p.suffix == '.pth' for p in written)
    assert any(p.name.startswith('events.out.tfevents') for p in written)
    assert any(p.suffix == '.log' for p in written)
    assert _scan(tmp_path / 'work', ['PHI_DOE_JOHN_1961', 'DOE_JOHN']) == []
    import torch
    ckpt = torch.load(next(p for p in written if p.suffix == '.pth'), weights_only=False)
    assert '<redacted:' in ckpt['meta']['cfg']
    from perception.engine.privacy import current_redactor, redact_text
    assert current_redactor() is runner.redactor
    assert 'DOE_JOHN' not in redact_text(f'{data_root}/x.png')


def test_sample_names_follow_the_guard():
    from perception.engine.privacy import is_private, sample_caption, sample_name
    path = '/arch/DOE_JOHN_1961/ACC42_series/IM0001.dcm'
    meta = dict(series_uid='1.2.826.0.1.3680043.2.1125.7', slice_index=3)
    # unguarded: today's readable names
    assert sample_name(path, meta, None) == 'IM0001'
    assert sample_caption(path, meta, None) == 'IM0001.dcm'
    r = Redactor(['/arch/DOE_JOHN_1961'])
    assert is_private(path, r) and not is_private('/elsewhere/x.png', r)
    assert sample_name('/elsewhere/x.png', meta, r) == 'x'
    # guarded: series UID digest + slice index, or a digest of the path
    name = sample_name(path, meta, r)
    assert name.startswith('series-') and name.endswith('-slice-0003')
    assert name == sample_name(path.replace('IM0001', 'IM0002'), meta, r)
    assert sample_caption(path, meta, r) == f"series {meta['series_uid']} slice 3"
    other = sample_name(path, {}, r)
    assert other.startswith('sample-') and other != sample_name(path + 'x', {}, r)
    assert sample_caption(path, {}, r).startswith('<redacted:')
    for text in (name, other, sample_caption(path, meta, r)):
        assert 'DOE' not in text and 'ACC42' not in text and 'IM0001' not in text


# the second runner may reuse the first one's visualizer name (same second)
@pytest.mark.filterwarnings('ignore:.*has been created:UserWarning')
def test_current_redactor_is_the_current_runs(tmp_path):
    """A guarded run's redactor does not outlive it into an unguarded run."""
    from mmengine.runner import Runner

    from perception.engine.privacy import current_redactor
    data_root = tmp_path / 'PHI_ROE_JANE'
    write_shape_images(str(data_root), n_per_class=1, size=16)
    cfg = Config.fromfile(str(REPO / 'configs/smoke/tiny_classifier.py'))
    cfg.train_dataloader.dataset.data_root = str(data_root)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    guarded = cfg.copy()
    guarded.privacy = dict(redact_keys=('data_root', ))
    guarded.work_dir = str(tmp_path / 'a')
    runner = private_runner_class(Runner, guarded).from_cfg(guarded)
    assert current_redactor() is runner.redactor is not None
    cfg.work_dir = str(tmp_path / 'b')  # same config name, maybe same second
    plain = private_runner_class(Runner, cfg).from_cfg(cfg)
    assert not hasattr(plain, 'redactor') and current_redactor() is None
