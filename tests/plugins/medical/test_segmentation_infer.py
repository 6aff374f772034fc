"""`perception infer` with a CT organ segmentor (the CT organ config,
untrained, at a 64x64 input) on a generated DICOM series: PredictedSeg
writes one DICOM SEG per series whose frames reference the series' slices
and which reads back (read_seg) to the label PNGs infer wrote; the SEG
holds only the source's patient and study values; detection
post-processors are not started for a segmentor; a series of non-DICOM
files gets no SEG and says why."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from perception import apis
from perception.registry import POSTPROCESSORS
from perception.sources import Frame

pydicom = pytest.importorskip('pydicom')
from perception_medical import load_series, planted_phi, register  # noqa: E402
from perception_medical.dicom.seg_read import read_seg  # noqa: E402
from perception_medical.lesions.sr import TYPE2  # noqa: E402
from perception_medical.segmentation_postprocess import PredictedSeg  # noqa: E402
from perception_medical.synth.organs import ORGAN_CLASSES  # noqa: E402
from perception_medical.synth.study import write_ct_study  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / ('configs/segmentation/fpnseg_vit-tiny-p16_simplefpn_'
                 '1000it-20min_synth-ct-organs.py')
SIZE = 64


class _DetectionOnly:
    """A post-processor of the contract before ``tasks``: detections."""

    @classmethod
    def applies(cls, frame) -> bool:
        return True

    def __init__(self, out_dir, class_names, **options) -> None:
        raise AssertionError('started for a segmentor')


@pytest.fixture
def detection_only():
    POSTPROCESSORS.register_module(name='_DetectionOnly',
                                   module=_DetectionOnly, force=True)
    yield
    POSTPROCESSORS.module_dict.pop('_DetectionOnly', None)


@pytest.fixture(scope='module')
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _segmentor():
    """The CT organ segmentor of CONFIG at SIZE x SIZE, head weights spread
    (an untrained head gives one class everywhere)."""
    from perception.data import PretrainedCfg
    from perception.engine.config import load_config
    from perception.registry import MODELS
    cfg = load_config(str(CONFIG))
    cfg.model.backbone.img_size = (SIZE, SIZE)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model.to_dict())
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    pipeline = [dict(type='Resize', scale=(SIZE, SIZE), keep_ratio=True)]
    return model.eval(), PretrainedCfg.from_model(
        model, pipeline, class_names=ORGAN_CLASSES)


def _series_in_patient_folder(root: Path) -> tuple[Path, dict]:
    """A series of 6 slices in a folder named after its patient."""
    register()
    study = write_ct_study(root / 'export', n_patients=1, size=48,
                           n_slices=6, lesions_per_patient=1, seed=5,
                           quiet=True, organ_masks=True)
    values = planted_phi(root / 'export')['patients'][0]['values']
    named = root / 'archive' / f"{values['PatientName'].split('^')[0]}_" \
        f"{values['PatientID']}"
    named.parent.mkdir()
    os.rename(study.root / study.series[0]['folder'], named)
    return named, values


def test_infer_writes_a_seg_per_series_equal_to_the_masks(
        tmp_path, one_torch_thread, detection_only):
    series, phi = _series_in_patient_folder(tmp_path)
    model, cfg = _segmentor()
    out = tmp_path / 'out'
    summary = apis.infer(model, str(series), out=str(out), backend='torch',
                         pretrained_cfg=cfg, pictures=False)
    assert summary['frames'] == 6
    volume = load_series(str(series))
    uid = str(volume.meta['series_uid'])
    seg_file = str(out / 'seg' / f'{uid}_seg.dcm')
    post = summary['postprocessors']
    assert sorted(post) == ['PredictedSeg']  # no detection post-processor
    assert post['PredictedSeg'] == dict(
        series=1, slices=6, segments=4, segment_labels=list(ORGAN_CLASSES[1:]),
        files=[seg_file], by_series={uid: dict(file=seg_file, slices=6)},
        skipped={}, out_dir=str(out / 'seg'))
    assert seg_file in summary['files']
    assert sorted(os.listdir(out / 'seg')) == [f'{uid}_seg.dcm']
    data = json.loads((out / 'predictions.json').read_text())
    assert data['summary']['postprocessors']['PredictedSeg']['files'] == \
        [seg_file]

    # the SEG's frames reference every slice of the series, by SOP UID
    ds = pydicom.dcmread(seg_file)
    sops = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
            for f in volume.files}
    referenced = [str(g.DerivationImageSequence[0].SourceImageSequence[0]
                      .ReferencedSOPInstanceUID)
                  for g in ds.PerFrameFunctionalGroupsSequence]
    assert set(referenced) == sops and len(sops) == 6
    assert str(ds.ReferencedSeriesSequence[0].SeriesInstanceUID) == uid

    # read back onto the series: the label PNGs infer wrote, slice by slice
    from PIL import Image
    masks = {im['slice_index']: np.asarray(Image.open(out / im['mask_file']))
             for im in data['images']}
    assert sorted(masks) == list(range(6))
    want = np.stack([masks[k] for k in range(6)])
    assert len(np.unique(want)) >= 3  # a real test of the placement
    read = read_seg(seg_file, volume)
    assert read.covered.all() and read.classes == list(ORGAN_CLASSES)
    np.testing.assert_array_equal(read.labels, want)

    # privacy: the source's patient and study values, nothing else planted
    assert str(ds.PatientName) == phi['PatientName']
    raw = Path(seg_file).read_bytes()
    leaked = [k for k, v in phi.items() if k not in TYPE2 and
              str(v).encode() in raw]
    assert not leaked, leaked
    assert series.name.encode() not in raw  # the folder named after them
    assert not any(e.tag.is_private for e in ds.iterall())
    for path in out.rglob('*'):  # the other outputs hold no patient value
        if path.is_file() and path.suffix != '.dcm':
            blob = path.read_bytes()
            assert phi['PatientName'].split('^')[0].encode() not in blob, path
            assert phi['PatientID'].encode() not in blob, path


def test_slices_from_non_dicom_files_get_no_seg(tmp_path):
    from mmengine.structures import PixelData

    from perception.structures import DataSample
    post = PredictedSeg(tmp_path, ['background', 'body'])
    for k in range(2):
        path = tmp_path / f'slice{k}.mhd'
        path.write_text('ObjectType = Image\n')
        frame = Frame(np.zeros((4, 4), np.float32), k, k, 'ct', dict(
            series_uid='1.2.3', slice_index=k, affine=np.eye(4),
            path=str(path)))
        sample = DataSample()
        sample.pred_sem_seg = PixelData(data=torch.ones(1, 4, 4,
                                                        dtype=torch.long))
        assert PredictedSeg.applies(frame)
        post.add(frame, sample)
    summary = post.close()
    assert summary['series'] == 0 and summary['files'] == []
    assert list(summary['skipped']) == ['1.2.3']
    assert summary['skipped']['1.2.3'].startswith(
        f"{tmp_path / 'slice0.mhd'} is not a DICOM file")
    assert not (tmp_path / 'seg').exists()
    assert not PredictedSeg.applies(Frame(np.zeros((4, 4)), 0, 0, 'cam0', {}))
