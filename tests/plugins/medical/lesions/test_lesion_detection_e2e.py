"""The 2.5D lesion detector end to end on a tiny generated study:
``perception train`` (a real Runner, a few iterations), ``perception test``
(LUNA16 FROC overall and by size, COCO slice AP), and inference on each
test series through the ``dicom`` source and ``LesionFindings`` giving the
same FROC numbers as the test (one merge rule). Then the privacy scan:
no planted patient value in anything training, testing or inference wrote
(the SR excepted by design: it holds the source's patient and study
modules, and nothing else of the headers)."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('pydicom')
pytest.importorskip('highdicom')

import pydicom  # noqa: E402

from perception import apis  # noqa: E402
from perception.cli import main as perception_main  # noqa: E402
from perception.engine.config import load_config  # noqa: E402
from perception.fileio import load_checkpoint_file, resolve_checkpoint  # noqa: E402
from perception.registry import MODELS  # noqa: E402
from perception.sources import open_source  # noqa: E402
from perception_medical import register  # noqa: E402
from perception_medical.annotations import read_annotations  # noqa: E402
from perception_medical.evaluation import froc  # noqa: E402
from perception_medical.lesions.postprocess import LesionFindings  # noqa: E402
from perception_medical.lesions.predict import iter_predictions  # noqa: E402
from perception_medical.synth import planted_phi, write_ct_study  # noqa: E402
from perception_medical.synth.scanners import catalogue  # noqa: E402

REPO = Path(__file__).resolve().parents[4]
CONFIG = REPO / 'configs/detection/tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py'
#: the modules a TID 1500 SR must carry from its source (patient, study)
SR_ALLOWED = ('PatientName', 'PatientID', 'PatientBirthDate', 'StudyDate',
              'AccessionNumber', 'ReferringPhysicianName')


def _study(root: Path, seed: int, patients: int) -> tuple[Path, dict]:
    """A study whose patient folders are named after the patients."""
    study = write_ct_study(root, n_patients=patients, size=48, n_slices=10,
                           lesions_per_patient=2, seed=seed, quiet=True,
                           scanners=catalogue(2), noise_hu=6.0)
    phi = planted_phi(root)
    for record in phi['patients']:
        v = record['values']
        named = f"{v['PatientName'].split('^')[0]}_{v['PatientBirthDate']}"
        os.rename(study.dicom_dir / record['patient_folder'], study.dicom_dir / named)
        record['folder'] = named
    return study.dicom_dir, phi


def _config(tmp: Path, train: Path, test: Path) -> Path:
    path = tmp / 'lesions_tiny.py'
    path.write_text(f"""
_base_ = [{str(CONFIG)!r}]
pipe = [dict(type='Resize', scale=(48, 48), keep_ratio=True),
        dict(type='PackInputs', meta_keys=_base_.meta_keys)]
def ds(root, split):
    return dict(data_root=root, split=split,
                index_file={str(tmp / 'index' / 'i.json')!r},
                pipeline=pipe)
model = dict(backbone=dict(img_size=(48, 48), depth=1),
             head=dict(test_cfg=dict(score_thr=0.0, max_per_img=5)))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=ds({str(train)!r}, 'train'))
val_dataloader = dict(batch_size=4, num_workers=0, dataset=ds({str(train)!r}, 'val'))
test_dataloader = dict(batch_size=4, num_workers=0, dataset=ds({str(test)!r}, 'all'))
val_evaluator = [dict(type='FROCMetric', ann_file={str(train / 'annotations.csv')!r})]
test_evaluator = [dict(type='FROCMetric', ann_file={str(test / 'annotations.csv')!r}),
                  dict(type='CocoMetric', classwise=False)]
train_cfg = dict(max_iters=2, val_interval=1000)
param_scheduler = None
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, save_best=None))
custom_hooks = []
""")
    return path


def _scan(root: Path, needles: list[str], skip=()) -> list[str]:
    found = []
    for path in root.rglob('*'):
        if not path.is_file() or path in skip:
            continue
        rel = str(path.relative_to(root))
        blobs = [path.read_bytes()]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                blobs += [z.read(n) for n in z.namelist()]
        for n in needles:
            if n.lower() in rel.lower():
                found.append(f'name {rel} holds {n}')
            if any(n.encode() in b or n.upper().encode() in b for b in blobs):
                found.append(f'{rel} holds {n}')
    return found


def test_train_test_and_infer_agree_and_leak_no_phi(tmp_path, monkeypatch):
    register()
    home = tmp_path / 'home'
    home.mkdir()
    for var in ('HOME', 'XDG_CACHE_HOME', 'TORCH_HOME', 'MPLCONFIGDIR'):
        monkeypatch.setenv(var, str(home))
    monkeypatch.setenv('PERCEPTION_CACHE', str(home / 'cache'))
    monkeypatch.chdir(tmp_path)
    data = tmp_path / 'data'
    train_dicom, train_phi = _study(data / 'train', 21, 3)
    test_dicom, test_phi = _study(data / 'test', 22, 2)
    needles = sorted(set(train_phi['values']) | set(test_phi['values']))
    config = _config(tmp_path, data / 'train', data / 'test')
    out = tmp_path / 'out'

    assert perception_main(['train', str(config), '--work-dir', str(out / 'train')]) == 0
    metrics = apis.test(str(config), str(out / 'train'), work_dir=str(out / 'test'))
    lesions = read_annotations(str(data / 'test' / 'annotations.csv'))
    assert metrics['froc/scans'] == 2
    assert metrics['froc/lesions'] == sum(len(v) for v in lesions.values()) > 0
    sizes = [d for items in lesions.values() for _, d in items]
    assert metrics['froc/lesions_>=6mm'] == sum(d >= 6 for d in sizes)
    assert metrics['froc/lesions_3-6mm'] == sum(3 <= d < 6 for d in sizes)
    for key in ('froc/cpm', 'froc/sens@1', 'froc/sens@4_>=6mm', 'coco/AP', 'coco/AP50'):
        assert key in metrics, key
    assert metrics['froc/false_positives'] > 0  # score_thr 0: there are boxes

    # inference on each test series: the findings give the test's FROC
    cfg = load_config(str(config))
    model = MODELS.build(cfg.model)
    ckpt = load_checkpoint_file(resolve_checkpoint(str(out / 'train')), map_location='cpu')
    model.load_state_dict(ckpt['state_dict'])
    post = LesionFindings(out / 'infer', ['lesion'], min_score=0.0, max_pictures=2)
    pipeline = cfg.test_dataloader.dataset.pipeline
    for record in test_phi['patients']:
        for folder in sorted((test_dicom / record['folder']).iterdir()):
            with open_source(str(folder)) as source:
                frames = list(source)
            for frame, sample in iter_predictions(model, frames, pipeline, (-1, 0, 1)):
                post.add(frame, sample)
    summary = post.close()
    assert summary['series'] == 2
    candidates, srs = [], []
    for path in (out / 'infer' / 'findings').glob('*.json'):
        record = json.loads(path.read_text())
        candidates += [(f['series_uid'], *f['center_lps'], f['score'])
                       for f in record['findings']]
    res = froc(candidates, lesions, list(lesions))
    assert res.n_false_positives == metrics['froc/false_positives']
    assert res.n_detected == metrics['froc/detected']
    assert res.cpm == pytest.approx(metrics['froc/cpm'], abs=1e-6)

    # privacy: nothing written holds a planted value, SRs aside ...
    srs = sorted((out / 'infer' / 'findings').glob('*_sr.dcm'))
    assert len(srs) == 2
    assert _scan(tmp_path / 'out', needles, skip=set(srs)) == []
    assert _scan(tmp_path / 'index', needles) == []
    assert _scan(home, needles) == []
    # ... which hold their patient's patient and study modules only
    for sr_path in srs:
        sr = pydicom.dcmread(sr_path)
        (record, ) = [r for r in test_phi['patients']
                      if r['values']['PatientID'] == sr.PatientID]
        values = record['values']
        blob = sr_path.read_bytes()
        held = {k for k, v in values.items() if str(v).encode() in blob}
        assert held <= set(SR_ALLOWED), held - set(SR_ALLOWED)
        assert {'PatientName', 'PatientID', 'PatientBirthDate'} <= held
        others = [r for r in test_phi['patients'] if r is not record]
        assert not any(str(v).encode() in blob for r in others
                       for v in r['values'].values())
    assert np.isfinite(metrics['froc/false_positives'])
