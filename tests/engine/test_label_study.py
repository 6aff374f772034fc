"""`perception benchmark label-efficiency` end to end on a tiny generated
drive (tiny ViT, a few iterations, two fractions, one seed): pretraining,
fine-tuning from it and from scratch, the table (Markdown + JSON) and the
plot; then resume: recorded runs are not rerun, an interrupted one is rerun
afresh; a folder started with another budget is refused in one line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perception.cli import main
from perception.engine.label_study import RECORD, plan_runs, read_record

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip('perception_driving', reason='the drive and its KITTI '
                    'reader live in the driving plugin')

TINY_VIT = ("_delete_=True, type='VisionTransformer', patch_size=16, "
            "in_chans=3, pos_embed_type='sincos', "
            "arch=dict(embed_dim=32, depth=2, num_heads=2)")


def _configs(root: Path, drive: Path) -> dict:
    kitti = f'{drive}/kitti/training/'
    pretrain = root / 'tiny_mae.py'
    pretrain.write_text(f'''
_base_ = ['{REPO}/configs/pretrain/mae_vit-tiny-p16_1xb32-400e_driving-256x512.py']
model = dict(backbone=dict({TINY_VIT}, img_size=(64, 96)),
             decoder=dict(embed_dim=32, depth=1, num_heads=2))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(source=['{drive}/images/front'], stride=1, cache=False,
                 cache_dir=None, pipeline=[
        dict(type='RandomResizedCrop', size=(64, 96), crop_scale=(0.5, 1.0)),
        dict(type='PackInputs')]))
train_cfg = dict(max_epochs=1)
custom_hooks = []
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
amp = 'off'
''')
    scratch = root / 'tiny_det.py'
    scratch.write_text(f'''
_base_ = ['{REPO}/configs/detection/tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py']
model = dict(backbone=dict({TINY_VIT}, img_size=(96, 160),
                           drop_path_rate=0.0),
             neck=dict(in_channels=32, out_channels=16),
             head=dict(in_channels=16, feat_channels=16))
def _kitti(pipeline, test_mode):
    return dict(type='ConcatDataset', datasets=[dict(
        type='KittiDataset', data_root='{kitti}', filters=dict(min_height=8),
        class_map='{drive}/kitti/class_map.yaml', test_mode=test_mode,
        pipeline=pipeline)])
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, **_kitti([dict(type='LoadImage'),
                                          dict(type='PackInputs')], False)))
test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='LabelSubsetDataset', fraction=0.5,
                 dataset=_kitti([dict(type='LoadImage'),
                                 dict(type='PackInputs')], True)))
test_evaluator = dict(_delete_=True, type='CocoMetric')
train_cfg = dict(max_iters=2, val_interval=1000)
val_dataloader = None  # no validation at the end of training: test only
val_cfg = None
val_evaluator = None
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
amp = 'off'
''')
    pretrained = root / 'tiny_det_mae.py'
    pretrained.write_text(f'''
_base_ = ['{scratch}']
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='unset')))
''')
    return dict(pretrain=str(pretrain), scratch=str(scratch),
                pretrained=str(pretrained))


@pytest.fixture(scope='module')
def tiny_domain(tmp_path_factory):
    from perception.study_domains import _DOMAINS, StudyDomain
    from perception_driving.synth import generate_drive
    root = tmp_path_factory.mktemp('study')
    generate_drive(str(root / 'drive'), seed=5, frames=8, size=(160, 96),
                   formats=('images', 'kitti'), quiet=True)
    configs = _configs(root, root / 'drive')
    domain = StudyDomain(
        name='tiny-drive', pretrain_config=configs['pretrain'],
        scratch_config=configs['scratch'],
        pretrained_config=configs['pretrained'], fraction_kind='images',
        fractions=(0.25, 1.0), focus=0.25,
        metrics=(('coco/AP50', 'AP50'), ('coco/AP', 'AP')),
        data_check=(str(root / 'drive' / 'kitti'), ))
    _DOMAINS[domain.name] = domain
    yield root
    _DOMAINS.pop(domain.name)


def _study(root: Path, *extra: str, folder: str = 'le') -> int:
    return main(['benchmark', '--quiet', 'label-efficiency', '--domain',
                 'tiny-drive', '--seeds', '1', '--rows', 'scratch',
                 'pretrained', '--budget-min', '5', '--pretrain-min', '5',
                 '--work-dir', str(root / folder), *extra])


def test_a_tiny_study_writes_its_table_and_plot(tiny_domain, capsys):
    from PIL import Image
    assert _study(tiny_domain, '--in-process') == 0
    out = capsys.readouterr().out
    study = tiny_domain / 'le'
    records = read_record(str(study))
    assert set(records) == {'pretrain', 'scratch_25pct_s0',
                            'pretrained_25pct_s0', 'scratch_100pct_s0',
                            'pretrained_100pct_s0'}
    for key, entry in records.items():
        if key != 'pretrain':
            assert 0.0 <= entry['metrics']['coco/AP50'] <= 1.0
            assert entry['iterations'] == 2
            assert entry['commands'][0].startswith('perception train ')
    # the subset really is a quarter of the 8 frames, the init really the MAE
    config = (study / 'runs' / 'pretrained_25pct_s0' / 'config.py').read_text()
    assert "type='LabelSubsetDataset'" in config and 'fraction=0.25' in config
    assert str(study / 'pretrain') in config
    log = (study / 'runs' / 'pretrained_25pct_s0' / 'run.log').read_text()
    assert f'VisionTransformer: loaded {study}/pretrain/epoch_1.pth' in log
    scratch_log = (study / 'runs' / 'scratch_25pct_s0' / 'run.log').read_text()
    assert 'VisionTransformer: loaded' not in scratch_log
    table = (study / 'label_efficiency.md').read_text()
    assert '| scratch | 25% of images | 1 |' in table
    assert '| pretrained (fine-tuned) | 100% of images | 1 |' in table
    assert 'one seed only' in table and 'perception train' in table
    assert table.split('\n')[0] in out
    data = json.loads((study / 'label_efficiency.json').read_text())
    assert {(r['row'], r['fraction']) for r in data['rows']} == {
        ('scratch', 0.25), ('scratch', 1.0), ('pretrained', 0.25),
        ('pretrained', 1.0)}
    with Image.open(study / 'label_efficiency.png') as png:
        rgb = np.asarray(png.convert('RGB')).astype(int)
    red = np.array([0xd6, 0x27, 0x28])  # the pretrained row's colour
    assert rgb.shape[0] > 200 and (np.abs(rgb - red).sum(-1) < 30).sum() > 50


def test_resume_skips_recorded_runs_and_redoes_an_interrupted_one(
        tiny_domain, capsys):
    study = tiny_domain / 'le'
    lines = (study / RECORD).read_text().splitlines()
    kept = [ln for ln in lines if json.loads(ln)['id'] != 'scratch_100pct_s0']
    (study / RECORD).write_text('\n'.join(kept) + '\n{"id": "torn')  # killed
    for name in ('scratch_25pct_s0', 'scratch_100pct_s0'):
        (study / 'runs' / name / 'MARK').write_text('before')
    assert _study(tiny_domain, '--in-process') == 0
    out = capsys.readouterr().out
    assert '3 of 4 runs already recorded' in out
    assert (study / 'runs' / 'scratch_25pct_s0' / 'MARK').exists()  # kept
    assert not (study / 'runs' / 'scratch_100pct_s0' / 'MARK').exists()
    records = read_record(str(study))
    assert 'scratch_100pct_s0' in records and len(records) == 5


def test_another_budget_on_the_same_folder_is_one_line(tiny_domain, capsys):
    status = main(['benchmark', 'label-efficiency', '--domain', 'tiny-drive',
                   '--seeds', '1', '--budget-min', '7', '--pretrain-min', '5',
                   '--work-dir', str(tiny_domain / 'le')])
    err = capsys.readouterr().err
    assert status == 2 and 'Traceback' not in err
    assert 'budget_min: 5.0 there, 7.0 now' in err


def test_the_plan_puts_three_seeds_and_the_ablations_at_the_focus():
    runs = plan_runs([0.01, 0.1, 1.0], seeds=3, focus=0.1)
    ids = [r.id for r in runs]
    assert ids[:2] == ['scratch_10pct_s0', 'pretrained_10pct_s0']
    assert len(ids) == 13 and len(set(ids)) == 13
    assert {r.seed for r in runs if r.fraction == 0.1 and r.row == 'scratch'} \
        == {0, 1, 2}
    assert {r.seed for r in runs if r.fraction == 1.0} == {0}
    assert [r.row for r in runs[-3:]] == ['linear-probe', 'lora',
                                          'no-layer-decay']
    assert all(r.fraction == 0.1 and r.seed == 0 for r in runs[-3:])


def test_ct_fractions_are_patient_counts_of_at_least_two(capsys):
    pytest.importorskip('perception_medical')
    status = main(['benchmark', 'label-efficiency', '--domain', 'medical',
                   '--fractions', '1', '4', '--dry-run'])
    err = capsys.readouterr().err
    assert status == 2 and 'at least 2 patients' in err
    assert main(['benchmark', 'label-efficiency', '--domain', 'medical',
                 '--dry-run', '--work-dir', '/nonexistent/le']) == 0
    out = capsys.readouterr().out
    assert 'num_groups' not in out  # commands only; configs are written later
    assert 'perception synth-ct data/ct_lesions/train --patients 40' in out
    assert '# pretrained_4_s2' in out and '# lora_4_s0' in out
    assert main(['benchmark', 'label-efficiency', '--domain', 'nope',
                 '--dry-run']) == 2
    assert "unknown study domain 'nope'; registered: " in capsys.readouterr().err


@pytest.mark.slow
def test_the_tiny_study_through_subprocesses(tiny_domain, capsys):
    """What a real study does: every train and test in its own process."""
    assert _study(tiny_domain, folder='le_sub') == 0
    records = read_record(str(tiny_domain / 'le_sub'))
    assert len(records) == 5
    assert all(0.0 <= e['metrics']['coco/AP50'] <= 1.0
               for k, e in records.items() if k != 'pretrain')
    assert (tiny_domain / 'le_sub' / 'label_efficiency.png').stat().st_size
