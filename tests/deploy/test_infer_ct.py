"""`perception infer` on a synthetic CT series: per-slice detections with
centres in LPS mm (equal to the series' own geometry), windowed slice
pictures, domain post-processors from POSTPROCESSORS (the contract, with a
recorder registered here), and no planted patient value in anything written,
even with the series folder named after the patient."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import make_bundle, pretrained_cfg, tiny_detector

from perception import apis
from perception.registry import POSTPROCESSORS

pytest.importorskip('onnxruntime')
synth = pytest.importorskip('perception_medical.synth',
                            reason='synthetic CT studies need the medical plugin')
from perception_medical import load_series  # noqa: E402


class _Recorder:
    """A post-processor of the POSTPROCESSORS contract that records."""

    seen: list = []

    @classmethod
    def applies(cls, frame) -> bool:
        return 'series_uid' in frame.meta

    def __init__(self, out_dir: Path, class_names, **options) -> None:
        self.out_dir, self.class_names = out_dir, list(class_names)
        self.rows = []

    def add(self, frame, sample) -> None:
        boxes = sample.pred_instances.bboxes.numpy()
        self.rows.append((int(frame.meta['slice_index']), boxes.copy()))

    def close(self) -> dict:
        (self.out_dir / 'recorder.txt').write_text(f'{len(self.rows)} slices')
        type(self).seen = self.rows
        return dict(slices=len(self.rows))


@pytest.fixture
def recorder():
    POSTPROCESSORS.register_module(name='_Recorder', module=_Recorder,
                                   force=True)
    yield _Recorder
    POSTPROCESSORS.module_dict.pop('_Recorder', None)


def _series_with_phi_folder(root: Path) -> tuple[Path, list[str]]:
    study = synth.write_ct_study(root / 'export', n_patients=1, size=48,
                                 n_slices=6, lesions_per_patient=1, seed=7)
    phi = synth.planted_phi(root / 'export')
    values = phi['patients'][0]['values']
    named = root / 'archive' / f"{values['PatientName'].split('^')[0]}_" \
        f"{values['PatientID']}_{values['PatientBirthDate']}"
    named.parent.mkdir()
    os.rename(study.dicom_dir / study.series[0]['folder'].split('/', 1)[1],
              named)
    needles = set(phi['values']) | {named.name}
    needles |= set(values['PatientName'].split('^'))
    return named, sorted(needles)


def test_ct_series_detections_in_lps_mm_pictures_and_postprocessors(
        tmp_path, recorder):
    series, needles = _series_with_phi_folder(tmp_path)
    windows = [(-600.0, 1500.0)]
    model = tiny_detector(mean=(0.5, ) * 3, std=(0.25, ) * 3, windows=windows)
    cfg = pretrained_cfg(model, scale=(64, 64), slice_offsets=[-1, 0, 1])
    bundle = make_bundle(tmp_path / 'bundle', model, cfg, 64, 64)
    out = tmp_path / 'out'
    summary = apis.infer(str(bundle), str(series), out=str(out),
                         score_thr=0.2)
    assert summary['frames'] == 6 and summary['detections'] > 0
    data = json.loads((out / 'detections.json').read_text())
    assert [im['slice_index'] for im in data['images']] == list(range(6))
    assert data['info']['source'] == 'DICOM series'
    volume = load_series(str(series))
    by_image = {im['id']: im for im in data['images']}
    for ann in data['annotations'][:20]:
        x, y, w, h = ann['bbox']
        k = by_image[ann['image_id']]['slice_index']
        # pixel-edge centre -> (z, row, col) index of pixel centres
        want = volume.index_to_lps(np.array([[k, y + h / 2 - 0.5,
                                              x + w / 2 - 0.5]]))[0]
        # bbox is rounded to 1e-3 px in the JSON; pixels are ~8 mm here
        np.testing.assert_allclose(ann['center_lps'], want, atol=0.02)
    # the post-processor contract: every slice, boxes in source pixels
    assert summary['postprocessors']['_Recorder'] == dict(slices=6)
    assert [k for k, _ in _Recorder.seen] == list(range(6))
    first = [a['bbox'] for a in data['annotations'] if a['image_id'] == 0]
    np.testing.assert_allclose(_Recorder.seen[0][1][:, 0],
                               [b[0] for b in first], atol=0.01)
    assert (out / 'recorder.txt').read_text() == '6 slices'
    assert 'LesionFindings' in summary['postprocessors']  # the medical one
    assert len(list((out / 'pictures').glob('slice_*.jpg'))) == 6
    # PHI: no planted value in any file name or content written
    leaks = []
    for path in out.rglob('*'):
        name = str(path.relative_to(out))
        leaks += [f'name {name} holds {n}' for n in needles
                  if n.lower() in name.lower()]
        if path.is_file():
            blob = path.read_bytes()
            leaks += [f'{name} holds {n}' for n in needles
                      if n.encode() in blob or n.upper().encode() in blob]
    assert not leaks, leaks
