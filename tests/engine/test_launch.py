"""perception train / test through the real mmengine Runner: resume gives the
losses of an uninterrupted run, crafted checkpoints are refused on every load
path, readable errors for unknown types and unsupported configs."""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest
import torch

from perception.cli import all_commands
from perception.data import write_shape_images

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / 'configs' / 'smoke' / 'tiny_classifier.py'


@pytest.fixture(scope='module')
def shapes(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('shapes')
    write_shape_images(str(root), n_per_class=4, size=32, seed=0)
    return str(root)


def write_config(folder: Path, name: str, data_root: str, **extra) -> str:
    """A config inheriting the smoke config: deterministic pipeline (no
    random flip), every iteration logged unsmoothed, tiny batches."""
    lines = [
        f'_base_ = [{str(SMOKE)!r}]',
        f'data_root = {data_root!r}',
        "pipeline = [dict(type='LoadImage'), dict(type='PackInputs')]",
        'train_dataloader = dict(batch_size=4, dataset=dict('
        'data_root=data_root, pipeline=pipeline))',
        'val_dataloader = dict(batch_size=12, dataset=dict('
        'data_root=data_root))',
        'test_dataloader = val_dataloader',
        'default_hooks = dict(logger=dict(interval=1))',
        'log_processor = dict(window_size=1)',
        # explicit `end`: a run stopped after epoch 1 has the same schedule
        "param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, "
        'T_max=2, begin=0, end=2, eta_min=1e-5)]',
        "vis_backends = [dict(type='LocalVisBackend')]",
        'visualizer = dict(vis_backends=vis_backends)',
    ]
    lines += [f'{k} = {v!r}' for k, v in extra.items()]
    path = folder / f'{name}.py'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def run(command: str, *argv: str) -> int:
    return all_commands()[command].main([str(a) for a in argv])


def train_losses(work_dir: str) -> dict[int, float]:
    """Loss of every logged training iteration, by global step."""
    losses = {}
    for path in glob.glob(os.path.join(work_dir, '*', 'vis_data',
                                       'scalars.json')):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    losses[record['step']] = record['loss']
    return losses


def test_resume_continues_like_an_uninterrupted_run(tmp_path, shapes):
    whole = write_config(tmp_path, 'whole', shapes)
    first = write_config(tmp_path, 'first', shapes)
    again = write_config(tmp_path, 'again', shapes)
    two = ['--cfg-options', 'train_cfg.max_epochs=2']
    assert run('train', whole, '--work-dir', tmp_path / 'a', *two) == 0
    assert run('train', first, '--work-dir', tmp_path / 'b', '--cfg-options',
               'train_cfg.max_epochs=1') == 0
    assert run('train', again, '--work-dir', tmp_path / 'b', '--resume',
               *two) == 0
    reference = train_losses(str(tmp_path / 'a'))
    resumed = train_losses(str(tmp_path / 'b'))
    assert sorted(reference) == sorted(resumed) == list(range(1, 7))
    after = [s for s in reference if s > 3]  # epoch 2: after the resume
    assert [resumed[s] for s in after] == pytest.approx(
        [reference[s] for s in after], rel=1e-6, abs=1e-7)

    # what perception writes loads with plain weights_only=True
    ckpt = torch.load(tmp_path / 'b' / 'epoch_2.pth', weights_only=True)
    assert ckpt['meta']['epoch'] == 2 and 'TimmClassifier' in \
        ckpt['meta']['cfg']
    pretrained = ckpt['meta']['pretrained_cfg']
    assert pretrained['mean'] == pytest.approx([123.675, 116.28, 103.53])
    # the whole record: architecture, channels, classes
    from perception.data import PretrainedCfg
    assert pretrained['architecture'] == 'resnet10t'
    assert pretrained['format_version'] == 1
    assert PretrainedCfg.from_dict(pretrained).in_chans == 3
    assert pretrained['class_names'] == sorted(pretrained['class_names']) \
        and len(pretrained['class_names']) >= 2
    hub = ckpt['message_hub']['log_scalars']['train/loss']
    assert hub['__perception__'] == 'HistoryBuffer'



class Evil:
    """Unpickling this creates ``path`` (stands for any code execution)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def evil_checkpoint(tmp_path):
    from perception.models import TimmClassifier
    model = TimmClassifier('resnet10t', num_classes=3)
    marker = tmp_path / 'pwned.txt'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': model.state_dict(),
                'meta': {'epoch': 1, 'iter': 3, 'note': Evil(str(marker))}},
               path)
    assert not marker.exists()
    return path, marker


@pytest.mark.parametrize('how', ['resume', 'load_from', 'test', 'init_cfg'])
def test_crafted_checkpoint_is_refused_on_every_load_path(
        tmp_path, shapes, evil_checkpoint, capsys, how):
    path, marker = evil_checkpoint
    cfg = write_config(tmp_path, 'evil_' + how, shapes)
    work = ['--work-dir', tmp_path / 'w',
            '--cfg-options', 'train_cfg.max_epochs=1']
    if how == 'resume':
        status = run('train', cfg, '--resume', path, *work)
    elif how == 'load_from':
        status = run('train', cfg, *work, f'load_from={path}')
    elif how == 'test':
        status = run('test', cfg, path, '--work-dir', tmp_path / 'w')
    else:
        status = run('train', cfg, *work, 'model.init_cfg.type=Pretrained',
                     f'model.init_cfg.checkpoint={path}')
    err = capsys.readouterr().err
    assert status == 2
    assert 'io.open' in err and '--trust-checkpoint' in err
    assert str(path) in err
    assert not marker.exists()


def test_trusted_checkpoint_loads_when_asked(tmp_path, shapes,
                                             evil_checkpoint):
    path, marker = evil_checkpoint
    cfg = write_config(tmp_path, 'trusted', shapes)
    out = tmp_path / 'preds.json'
    assert run('test', cfg, path, '--work-dir', tmp_path / 'w',
               '--trust-checkpoint', '--out', out,
               '--show-dir', tmp_path / 'show') == 0
    assert marker.exists()  # full unpickling ran, as the user asked
    predictions = json.loads(out.read_text())
    assert len(predictions) == 12 and len(predictions[0]['pred_score']) == 3
    assert len(os.listdir(tmp_path / 'show')) == 12


def test_test_command_takes_a_work_dir(tmp_path):
    from perception.engine.checkpoint import resolve_checkpoint
    ckpt = tmp_path / 'epoch_3.pth'
    ckpt.write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    assert resolve_checkpoint(str(tmp_path)) == str(ckpt)
    assert resolve_checkpoint(str(tmp_path / 'last_checkpoint')) == str(ckpt)
    with pytest.raises(FileNotFoundError, match='work dir'):
        resolve_checkpoint(str(tmp_path / 'nothing.pth'))


def test_unknown_type_names_registry_and_close_matches(tmp_path, shapes,
                                                       capsys):
    cfg = write_config(tmp_path, 'typo', shapes)
    status = run('train', cfg, '--work-dir', tmp_path / 'w', '--cfg-options',
                 'model.type=TimmClasifier')
    err = capsys.readouterr().err
    assert status == 2
    assert "'TimmClasifier' is not in the perception::model registry" in err
    assert 'TimmClassifier' in err.split('Did you mean:')[1]
    assert 'Plugins loaded' in err


def test_unknown_dataset_type_from_inside_training(tmp_path, shapes, capsys):
    cfg = write_config(tmp_path, 'typo_data', shapes)
    status = run('train', cfg, '--work-dir', tmp_path / 'w', '--cfg-options',
                 'train_dataloader.dataset.type=ImageFolderDataset2')
    err = capsys.readouterr().err
    assert status == 2
    assert "'ImageFolderDataset2' is not in the perception::dataset" in err
    assert 'ImageFolderDataset' in err.split('Did you mean:')[1]


def test_runner_type_is_honoured_and_checked(tmp_path, shapes, capsys):
    from mmengine.runner import Runner

    from perception.registry import RUNNERS

    class CountingRunner(Runner):
        built = 0

        def __init__(self, *args, **kwargs):
            # not type(self): the run builds a subclass (config_dump)
            CountingRunner.built += 1
            super().__init__(*args, **kwargs)

    RUNNERS.register_module(module=CountingRunner)
    try:
        cfg = write_config(tmp_path, 'custom', shapes)
        assert run('train', cfg, '--work-dir', tmp_path / 'w',
                   '--cfg-options', 'runner_type=CountingRunner') == 0
        assert CountingRunner.built == 1
        assert run('train', cfg, '--work-dir', tmp_path / 'w2',
                   '--cfg-options', 'runner_type=CountingRuner') == 2
        err = capsys.readouterr().err
        assert "'CountingRuner' is not in the perception::runner" in err
        assert 'CountingRunner' in err.split('Did you mean:')[1]
    finally:
        RUNNERS.module_dict.pop('CountingRunner')


@pytest.mark.parametrize('body, expected', [
    ("from mmengine.config import read_base\nwith read_base():\n"
     "    from .x import *\n", 'read_base'),
    ("_base_ = ['mmpretrain::_base_/default_runtime.py']\n", 'pkg_resources'),
])
def test_unsupported_config_styles_are_refused(tmp_path, capsys, body,
                                               expected):
    cfg = tmp_path / 'odd.py'
    cfg.write_text(body)
    assert run('train', cfg, '--work-dir', tmp_path / 'w') == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and expected in err and 'line' in err


def test_guarded_test_run_names_no_source_file(tmp_path):
    """`perception test --out --show-dir` under a privacy guard: the JSON
    holds no sample path, pictures are named by digest; unguarded runs keep
    the file names."""
    import re

    from perception.models import TimmClassifier
    root = tmp_path / 'PHI_DOE_JOHN_1961'
    write_shape_images(str(root), n_per_class=1, size=32, seed=0)
    ckpt = tmp_path / 'plain.pth'
    torch.save({'state_dict': TimmClassifier('resnet10t', num_classes=3)
                .state_dict(), 'meta': {}}, ckpt)
    stems = {p.stem for p in root.rglob('*.png')}
    for guarded in (False, True):
        extra = dict(privacy=dict(redact_keys=('data_root', ))) if guarded else {}
        cfg = write_config(tmp_path, f'guard_{guarded}', str(root), **extra)
        out, show = tmp_path / f'p{guarded}.json', tmp_path / f'show{guarded}'
        assert run('test', cfg, ckpt, '--work-dir', tmp_path / f'w{guarded}',
                   '--out', out, '--show-dir', show) == 0
        text, names = out.read_text(), sorted(os.listdir(show))
        assert len(json.loads(text)) == len(names) == 3
        if guarded:
            assert 'DOE_JOHN' not in text and '<redacted:' in text
            assert all(re.fullmatch(r'\d{5}_sample-[0-9a-f]{10}\.png', n)
                       for n in names), names
        else:
            assert str(root) in text
            assert {n[6:-4] for n in names} == stems


@pytest.mark.parametrize('show_dir, inside_work_dir', [
    ('pictures', True), ('pictures/pred', True), (None, False)])
def test_show_dir_is_placed_like_mmdet(tmp_path, show_dir, inside_work_dir):
    """A relative ``--show-dir`` is inside the work dir (not the current
    folder); an absolute one is used as given."""
    from perception.engine.launch import RunOptions, build_config
    work = tmp_path / 'w'
    (tmp_path / 'x.pth').write_bytes(b'')  # resolved, never loaded here
    target = show_dir if show_dir else str(tmp_path / 'abs_pictures')
    cfg = build_config(str(SMOKE), 'test', RunOptions(
        work_dir=str(work), checkpoint=str(tmp_path / 'x.pth'),
        show_dir=target))
    hooks = [h for h in cfg.custom_hooks
             if h.get('type') == 'PredictionPicturesHook']
    assert len(hooks) == 1
    expected = work / show_dir if inside_work_dir else tmp_path / 'abs_pictures'
    assert hooks[0]['out_dir'] == str(expected)


def test_a_config_inside_its_work_dir_is_not_overwritten(tmp_path, shapes):
    """``train work/config.py --work-dir work`` (the label-efficiency
    study's layout) then ``test``: mmengine would dump the redacted config
    over the source, and the test run would look for ``<redacted:...>``."""
    work = tmp_path / 'work'
    work.mkdir()
    config = write_config(work, 'config', shapes,
                          train_cfg=dict(max_epochs=1, val_interval=100),
                          privacy=dict(redact_keys=('data_root', )))
    source = Path(config).read_text()
    assert run('train', config, '--work-dir', work) == 0
    assert Path(config).read_text() == source
    dumped = (work / 'config_dumped.py').read_text()
    assert '<redacted:' in dumped and shapes not in dumped
    assert run('test', config, work, '--work-dir', work / 'test') == 0
