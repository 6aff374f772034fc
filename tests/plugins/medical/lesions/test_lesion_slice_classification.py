"""Slice-level "has lesion" classification on CT: LesionSliceClassificationDataset
(labels = the slice box CSV's >= 3 mm boxes, slices with only smaller ones
left out and counted, the detector's patient split, no box fields, the
lesion-balanced sampler), the two configs, and a tiny ``perception train``
+ ``perception test`` on the real Runner reporting top-1 and per-class
accuracy."""
from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from mmengine.logging import MMLogger

pydicom = pytest.importorskip('pydicom')

from perception.cli import main as perception_main  # noqa: E402
from perception.engine.config import load_config  # noqa: E402
from perception.registry import DATA_SAMPLERS, DATASETS, MODELS  # noqa: E402
from perception_medical import register  # noqa: E402
from perception_medical.annotations import AnnotationError  # noqa: E402
from perception_medical.datasets.lesions import LesionDetectionDataset  # noqa: E402
from perception_medical.synth import write_ct_study  # noqa: E402

REPO = Path(__file__).resolve().parents[4]
CONFIGS = sorted(glob.glob(str(REPO / 'configs/classification/*_synth-ct-lesion-slices.py')))
SCRATCH = REPO / 'configs/classification/mlp_vit-tiny-p16_500it-20min_synth-ct-lesion-slices.py'
TYPE = 'LesionSliceClassificationDataset'
MIN_MM = 3.0


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    register()
    root = tmp_path_factory.mktemp('ct_slices')
    write_ct_study(root, n_patients=3, size=48, n_slices=16, lesions_per_patient=3,
                   seed=31, quiet=True)
    return root


def _build(study: Path, tmp: Path, **kw):
    cfg = dict(type=TYPE, data_root=str(study), split='all', num_slices=3,
               index_file=str(tmp / 'index.json'), ann_file=None,
               box_file='slice_boxes.csv')
    cfg.update(kw)
    return DATASETS.build(cfg)


def _expected(study: Path) -> dict[str, str]:
    """Per SOP instance, from the box CSV and the DICOM pixel spacing:
    'lesion' (a box >= 3 mm), 'ignored' (only smaller boxes) or 'no lesion'."""
    spacing, label = {}, {}
    for path in (study / 'dicom').rglob('*.dcm'):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        spacing[ds.SOPInstanceUID] = [float(v) for v in ds.PixelSpacing]  # row, col
        label[ds.SOPInstanceUID] = 'no lesion'
    with open(study / 'slice_boxes.csv') as f:
        for row in csv.DictReader(f):
            uid = row['sop_instance_uid']
            sy, sx = spacing[uid]
            x1, y1, x2, y2 = (float(row[k]) for k in ('x1', 'y1', 'x2', 'y2'))
            big = min((x2 - x1) * sx, (y2 - y1) * sy) >= MIN_MM
            if big:
                label[uid] = 'lesion'
            elif label[uid] == 'no lesion':
                label[uid] = 'ignored'
    return label


def _sop(path: str) -> str:
    return pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID


def test_labels_are_the_box_csv_and_ignored_slices_are_left_out(study, tmp_path):
    expected = _expected(study)
    want = {k: list(expected.values()).count(k) for k in ('no lesion', 'lesion', 'ignored')}
    assert want['lesion'] > 0 and want['ignored'] > 0 and want['no lesion'] > want['lesion']
    # the counts line goes to the current MMLogger, whose console handler
    # may hold an earlier test's capture stream: listen on it directly
    logger = MMLogger.get_current_instance()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        ds = _build(study, tmp_path)
    finally:
        logger.removeHandler(handler)
    got = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        uid = _sop(info['img_path'])  # the centre slice
        assert uid not in got
        got[uid] = ds.metainfo['classes'][info['gt_label']]
        assert info['true_class'] == got[uid]
        assert info['has_lesion'] == (info['gt_label'] == 1)
        assert not {'gt_bboxes', 'gt_labels', 'gt_ignore_flags'} & set(info)
    assert got == {k: v for k, v in expected.items() if v != 'ignored'}
    assert ds.counts == {'no lesion': want['no lesion'], 'lesion': want['lesion'],
                         'ignored_only': want['ignored']}
    assert (f"LesionSliceClassificationDataset(all): no lesion {want['no lesion']}, "
            f"lesion {want['lesion']}, {want['ignored']} slices with only sub-3-mm "
            'lesions left out') in stream.getvalue()
    # kept on request, as either class
    for mode, name in (('negative', 'no lesion'), ('positive', 'lesion')):
        kept = _build(study, tmp_path, ignored_slices=mode)
        assert len(kept) == len(expected)
        labels = {_sop(kept.get_data_info(i)['img_path']): kept.get_data_info(i)['gt_label']
                  for i in range(len(kept))}
        assert all(labels[u] == kept.metainfo['classes'].index(name)
                   for u, v in expected.items() if v == 'ignored')


def test_world_annotations_give_the_detection_datasets_has_lesion(study, tmp_path):
    kw = dict(data_root=str(study), split='all', num_slices=3,
              index_file=str(tmp_path / 'index.json'))
    det = LesionDetectionDataset(**kw)
    cls = DATASETS.build(dict(type=TYPE, ignored_slices='negative', **kw))
    assert len(det) == len(cls)
    for i in range(len(det)):
        a, b = det.get_data_info(i), cls.get_data_info(i)
        assert (a['series_uid'], a['slice_index']) == (b['series_uid'], b['slice_index'])
        assert b['gt_label'] == int(a['has_lesion'])
        assert b['slice_paths'] == a['slice_paths']  # the same 2.5D slab


def test_patient_split_and_balanced_sampler(study, tmp_path):
    splits = {s: _build(study, tmp_path, split=s, val_fraction=0.34)
              for s in ('train', 'val', 'all')}
    patients = {s: {d.get_data_info(i)['patient'] for i in range(len(d))}
                for s, d in splits.items()}
    assert not patients['train'] & patients['val']
    assert patients['train'] | patients['val'] == patients['all']
    assert len(patients['val']) == 1 and len(patients['all']) == 3
    assert len(splits['train']) + len(splits['val']) == len(splits['all'])
    ds = splits['all']
    sampler = DATA_SAMPLERS.build(dict(type='LesionBalancedSampler', dataset=ds,
                                       positive_fraction=0.5, num_samples=2000, seed=0))
    drawn = np.array([ds.get_data_info(i)['gt_label'] for i in sampler])
    assert abs(drawn.mean() - 0.5) < 0.05  # vs ds.counts: about 1 in 4
    assert ds.counts['lesion'] / len(ds) < 0.4


def test_packed_sample_has_a_label_and_no_instances(study, tmp_path):
    cfg = load_config(str(SCRATCH))
    ds = _build(study, tmp_path, pipeline=cfg.train_dataloader.dataset.pipeline)
    i = next(i for i in range(len(ds)) if ds.get_data_info(i)['gt_label'] == 1)
    out = ds[i]
    sample = out['data_samples']
    assert out['inputs'].shape == (3, 256, 256)
    assert sample.gt_label.tolist() == [1] and 'gt_instances' not in sample
    assert sample.metainfo['true_class'] == 'lesion'


def test_bad_options_and_box_labels(study, tmp_path):
    with pytest.raises(ValueError, match="ignored_slices must be one of drop, "
                       "negative, positive, got 'maybe'"):
        _build(study, tmp_path, ignored_slices='maybe')
    with pytest.raises(ValueError, match='filter_empty=True would leave out every '
                       'slice without a lesion'):
        _build(study, tmp_path, filter_empty=True)
    # box labels are the detector's class indices (0 only), whatever this
    # dataset's two classes are
    rows = (study / 'slice_boxes.csv').read_text().splitlines()
    bad = tmp_path / 'boxes.csv'
    bad.write_text('\n'.join([rows[0], rows[1].rsplit(',', 1)[0] + ',1']) + '\n')
    with pytest.raises(AnnotationError, match='label=1'):
        _build(study, tmp_path, box_file=str(bad))


def test_configs_data_model_and_twin():
    assert [os.path.basename(p) for p in CONFIGS] == [
        'mlp_vit-tiny-p16-mae_500it-20min_synth-ct-lesion-slices.py',
        'mlp_vit-tiny-p16_500it-20min_synth-ct-lesion-slices.py']
    cfg = load_config(str(SCRATCH))
    for loader, split in ((cfg.train_dataloader, 'train'), (cfg.val_dataloader, 'val'),
                          (cfg.test_dataloader, 'all')):
        assert loader.dataset.type == TYPE and loader.dataset.split == split
        assert loader.dataset.ignored_slices == 'drop'
        assert loader.dataset.min_size_mm == MIN_MM
    assert cfg.val_dataloader.dataset.data_root == cfg.train_dataloader.dataset.data_root
    assert cfg.test_dataloader.dataset.data_root != cfg.train_dataloader.dataset.data_root
    assert cfg.train_dataloader.sampler.type == 'LesionBalancedSampler'
    assert cfg.train_cfg.max_iters == 500
    assert {'type': 'TimeBudgetHook', 'minutes': 20} in cfg.custom_hooks
    ev = cfg.test_evaluator
    assert ev.type == 'SubgroupMetric' and ev.metric.type == 'Accuracy'
    assert ev.fields == ['true_class'] and ev.unit_key == 'series_uid'
    pre, train = cfg.model.data_preprocessor, cfg.train_dataloader.dataset
    in_chans = cfg.model.backbone.in_chans
    assert len(pre.channel_meaning) == in_chans == train.num_slices * len(pre.windows) == 3
    assert len(pre.mean) == len(pre.std) == in_chans
    model = MODELS.build(cfg.model)
    assert model.class_names == ['no lesion', 'lesion'] and model.num_classes == 2
    twin = load_config(CONFIGS[0])
    init = twin.model.backbone.pop('init_cfg')
    assert init == {'type': 'Pretrained', 'checkpoint': 'work_dirs/ct_lesions/mae_pretrain'}
    assert twin.model.to_dict() == cfg.model.to_dict()
    assert twin.train_dataloader.to_dict() == cfg.train_dataloader.to_dict()


def _tiny_config(tmp: Path, train: Path, test: Path) -> Path:
    path = tmp / 'slices_tiny.py'
    path.write_text(f"""
_base_ = [{str(SCRATCH)!r}]
pipe = [dict(type='Resize', scale=(48, 48), keep_ratio=True),
        dict(type='PackInputs', meta_keys=_base_.meta_keys)]
def ds(root, split):
    return dict(data_root=root, split=split, val_fraction=0.34,
                index_file={str(tmp / 'index' / 'i.json')!r}, pipeline=pipe)
model = dict(backbone=dict(img_size=(48, 48), depth=1, drop_path_rate=0.0),
             data_preprocessor=dict(pad_size_divisor=16))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=ds({str(train)!r}, 'train'))
val_dataloader = dict(batch_size=8, num_workers=0, dataset=ds({str(train)!r}, 'val'))
test_dataloader = dict(batch_size=8, num_workers=0, dataset=ds({str(test)!r}, 'all'))
val_evaluator = dict(min_group_size=1, n_boot=20)
test_evaluator = dict(min_group_size=1, n_boot=20)
max_iters = 3
train_cfg = dict(max_iters=3, val_interval=3)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
custom_hooks = [dict(type='TimeBudgetHook', minutes=2)]
""")
    return path


def test_train_then_test_reports_top1_and_per_class_accuracy(study, tmp_path, capsys):
    test_study = tmp_path / 'test_study'
    write_ct_study(test_study, n_patients=2, size=48, n_slices=16, lesions_per_patient=3,
                   seed=32, quiet=True)
    config = _tiny_config(tmp_path, study, test_study)
    work = tmp_path / 'work'
    assert perception_main(['train', str(config), '--work-dir', str(work)]) == 0
    assert perception_main(['test', str(config), str(work), '--work-dir', str(work),
                            '--show-dir', 'pictures/']) == 0
    log = capsys.readouterr().out
    for key in ('accuracy/top1: ', 'per_class/true_class/lesion: ',
                'per_class/true_class/no lesion: '):
        assert key in log, key
    report = json.loads((work / 'per_class.json').read_text())
    assert report['metric'] == 'accuracy/top1' and report['unit'] == 'series_uid'
    groups = {g['value']: g for g in report['groups'] if g['field'] == 'true_class'}
    assert set(groups) == {'lesion', 'no lesion'}
    last = log[log.rindex('accuracy/top1: '):]
    top1 = float(last.split('accuracy/top1: ')[1].split()[0])
    for c, group in groups.items():
        logged = float(last.split(f'per_class/true_class/{c}: ')[1].split()[0])
        assert logged == pytest.approx(group['metric'], abs=1e-4)
    assert report['overall']['metric'] == pytest.approx(top1, abs=1e-4)
    # each test slice is in one true class: top-1 is the count-weighted mix
    ds = DATASETS.build(dict(load_config(str(config)).test_dataloader.dataset))
    n = ds.counts
    assert n['lesion'] > 0 and n['no lesion'] > 0
    mix = (n['lesion'] * groups['lesion']['metric']
           + n['no lesion'] * groups['no lesion']['metric']) / len(ds)
    assert top1 == pytest.approx(mix, abs=1e-3)
    # one picture per test slice, named by series digest and slice index
    pictures = sorted(p.name for p in (work / 'pictures').glob('*.png'))
    assert len(pictures) == len(ds) and '-slice-0000.png' in pictures[0]
    # the study's paths are private: not in the dumped config
    dumped = ''.join(p.read_text() for p in work.rglob('*.py'))
    assert dumped and str(study) not in dumped and str(test_study) not in dumped
