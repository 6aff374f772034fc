"""The shared bad-input policy through the real mmengine Runner: skips
written to bad_samples.jsonl and logged once each, counted per epoch,
max_bad_fraction stopping the run with a summary, and a dataloader worker
that is killed or hangs on a sample reported with that sample's file."""
from __future__ import annotations

import glob
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from perception.cli import all_commands
from perception.data import BadSampleError, ImageFolderDataset, write_shape_images
from perception.data.base_dataset import EmptyDatasetError, TooManyBadSamplesError
from perception.data.transforms import BaseTransform
from perception.registry import TRANSFORMS

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / 'configs' / 'smoke' / 'tiny_classifier.py'
PIPELINE = [dict(type='LoadImage'), dict(type='PackInputs')]


@TRANSFORMS.register_module(force=True)
class PoisonedSampleForTests(BaseTransform):
    """Kills its own process (``action='kill'``) or hangs (``'hang'``) on
    a file whose name holds ``poison``: a native decoder's crash or
    deadlock."""

    def __init__(self, action: str) -> None:
        self.action = action

    def transform(self, results: dict) -> dict:
        if 'poison' in os.path.basename(results['img_path']):
            if self.action == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(120)
        return results


def shapes(folder: Path, broken: int = 0, poisoned: int = 0,
           n_per_class: int = 4) -> str:
    write_shape_images(str(folder), n_per_class=n_per_class, size=32, seed=0)
    for i in range(broken):
        (folder / 'circle' / f'zz_broken{i}.png').write_bytes(b'\x89PNG cut')
    for i in range(poisoned):
        source = sorted((folder / 'square').glob('*.png'))[0]
        (folder / 'square' / f'zz_poison{i}.png').write_bytes(
            source.read_bytes())
    return str(folder)


def write_config(folder: Path, data_root: str, dataset: dict | None = None,
                 loader: dict | None = None, pipeline=None,
                 epochs: int = 1) -> str:
    pipeline = pipeline or PIPELINE
    path = folder / 'cfg.py'
    path.write_text('\n'.join([
        f'_base_ = [{str(SMOKE)!r}]',
        f'data_root = {data_root!r}',
        "model = dict(model_name='test_resnet')",
        f'train_dataloader = dict(batch_size=4, drop_last=True, '
        f'**{loader or {}!r}, '
        f'dataset=dict(data_root=data_root, pipeline={pipeline!r}, '
        f'**{dataset or {}!r}))',
        # validation would read the bad files too, and stop (test-time
        # datasets never skip)
        'val_dataloader = val_cfg = val_evaluator = None',
        f'train_cfg = dict(max_epochs={epochs})',
        "param_scheduler = [dict(type='ConstantLR', factor=1.0)]",
        "vis_backends = [dict(type='LocalVisBackend')]",
        'visualizer = dict(vis_backends=vis_backends)',
    ]) + '\n')
    return str(path)


def train(cfg: str, work: Path) -> int:
    return all_commands()['train'].main([cfg, '--work-dir', str(work)])


def run_log(work: Path) -> str:
    return ''.join(Path(p).read_text() for p in glob.glob(
        str(work / '*' / '*.log')))


def test_skips_are_written_counted_per_epoch_and_logged_once(tmp_path):
    root = shapes(tmp_path / 'data', broken=1, n_per_class=5)  # 16 files
    cfg = write_config(tmp_path, root, epochs=2, loader=dict(num_workers=1),
                       dataset=dict(on_bad_sample='skip',
                                    max_bad_fraction=0.5))
    work = tmp_path / 'w'
    assert train(cfg, work) == 0
    records = [json.loads(line) for line in
               (work / 'bad_samples.jsonl').read_text().splitlines()]
    assert records and {r['epoch'] for r in records} == {1, 2}
    for r in records:  # read in the worker process, named there
        assert r['file'].endswith('zz_broken0.png') and r['stage'] == 'read'
        assert r['dataset'] == 'ImageFolderDataset' and 'zz_broken0' in \
            r['reason']
    log = run_log(work)
    assert log.count('skipping bad sample') == 1  # once, not every draw
    assert 'bad samples skipped in epoch 1' in log
    assert 'bad samples skipped in epoch 2' in log


def test_passing_the_fraction_stops_the_run_with_a_summary(tmp_path, capsys):
    root = shapes(tmp_path / 'data', broken=4)  # 4 of 16
    cfg = write_config(tmp_path, root, dataset=dict(
        on_bad_sample='skip', max_bad_fraction=0.1))
    capsys.readouterr()
    assert train(cfg, tmp_path / 'w') == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert 'max_bad_fraction=0.1' in err and 'zz_broken' in err
    assert 'of 16 samples' in err


def test_fraction_and_empty_dataset_at_load(tmp_path):
    """Direct use (no run): the message names the data root and counts."""
    root = shapes(tmp_path / 'data', broken=1)
    ds = ImageFolderDataset(root, pipeline=PIPELINE, on_bad_sample='skip',
                            max_bad_fraction=0.5)
    ds.skip_bad(BadSampleError('a.png: cut'))
    ds.skip_bad(BadSampleError('a.png: cut'))
    assert len(ds.bad_records) == 2 and ds.bad_records[0]['stage'] == 'load'
    with pytest.raises(ValueError, match='max_bad_fraction'):
        ImageFolderDataset(root, on_bad_sample='skip', max_bad_fraction=2)

    class NothingUsable(ImageFolderDataset):
        def load_data_list(self):
            for i in range(3):
                self.skip_bad(BadSampleError(f'label {i}: box is NaN'))
            return []
    with pytest.raises(EmptyDatasetError) as info:
        NothingUsable(root, on_bad_sample='skip')
    message = str(info.value)
    assert root in message and 'all 3 records were bad' in message
    with pytest.raises(BadSampleError, match='label 0'):
        NothingUsable(root)  # 'error' stops at the first


@pytest.mark.parametrize('action', ['kill', 'hang'])
def test_worker_that_dies_or_hangs_names_the_sample(tmp_path, capsys,
                                                    monkeypatch, action):
    # Loggers made by earlier tests may hold pytest's closed capture streams;
    # logging would report that on stderr ('--- Logging error ---').
    monkeypatch.setattr(logging, 'raiseExceptions', False)
    root = shapes(tmp_path / 'data', poisoned=1, n_per_class=5)
    pipeline = PIPELINE[:1] + [dict(type='PoisonedSampleForTests',
                                    action=action)] + PIPELINE[1:]
    cfg = write_config(tmp_path, root, pipeline=pipeline, loader=dict(
        num_workers=1, timeout=3, persistent_workers=False))
    capsys.readouterr()
    assert train(cfg, tmp_path / 'w') == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert 'zz_poison0.png' in err
    assert ('killed by signal' in err or 'exited unexpectedly' in err) if \
        action == 'kill' else ('timed out' in err), err


def test_too_many_is_a_bad_sample_error_subclass():
    assert issubclass(TooManyBadSamplesError, BadSampleError)
    # torch re-raises a worker's exception with its traceback as the text
    wrapped = TooManyBadSamplesError(
        'Caught TooManyBadSamplesError in DataLoader worker process 0.\n'
        'Original Traceback (most recent call last):\n  File "x", line 1\n'
        'perception.data.base_dataset.TooManyBadSamplesError: 5 of 9 bad\n')
    assert str(wrapped) == '5 of 9 bad (in DataLoader worker process 0)'
