"""Predicted CT masks written as DICOM SEG (write_predicted_seg) read back
through read_seg onto the source series to the same labels, with only the
patient and study data DICOM requires; the refusals."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
import torch

from perception.structures import DataSample, make_sem_seg
from perception_medical import load_series
from perception_medical.dicom.seg_read import read_seg
from perception_medical.dicom.seg_write import SegWriteError
from perception_medical.lesions.sr import TYPE2
from perception_medical.segmentation import PredictedSegError, write_predicted_seg
from perception_medical.synth.study import write_ct_study

CLASSES = ['background', 'body', 'lungs', 'liver', 'heart']


@pytest.fixture(scope='module')
def series(tmp_path_factory):
    study = write_ct_study(tmp_path_factory.mktemp('pred'), n_patients=1,
                           size=40, n_slices=8, oblique=True, seed=21,
                           quiet=True)
    return study, load_series(study.root / study.series[0]['folder'])


def _samples(volume, labels, slices):
    out = []
    for k in slices:
        sample = DataSample(metainfo=dict(series_uid=volume.meta['series_uid'],
                                          slice_index=k))
        sample.pred_sem_seg = make_sem_seg(torch.from_numpy(
            labels[k].astype(np.int64)))
        out.append(sample)
    return out


def _labels(volume, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, len(CLASSES), volume.array.shape).astype(np.uint8)


def test_predicted_seg_reads_back_to_the_same_labels(series, tmp_path):
    study, volume = series
    labels = _labels(volume)
    # predictions in any order, as a test loop may deliver them
    samples = _samples(volume, labels, [5, 0, 7, 2, 1, 6, 3, 4])
    path = write_predicted_seg(tmp_path / 'pred.dcm', samples, volume, CLASSES)
    read = read_seg(path, volume)
    np.testing.assert_array_equal(read.labels, labels)
    assert read.classes == CLASSES and read.covered.all()
    ds = pydicom.dcmread(path)
    # the patient and study modules DICOM requires are there (as in the
    # SR); no other planted identifying value (institution, address, the
    # private tag repeating the name) is
    phi = study.phi[0]['values']
    assert str(ds.PatientID) == phi['PatientID']
    raw = open(path, 'rb').read()
    leaked = [k for k, v in phi.items() if k not in TYPE2 and v.encode() in raw]
    assert not leaked
    assert b'private note' not in raw
    assert not any(e.tag.is_private for e in ds.iterall())


def test_slices_without_prediction_are_left_out(series, tmp_path):
    _, volume = series
    labels = _labels(volume, 1)
    path = write_predicted_seg(tmp_path / 'part.dcm',
                               {2: labels[2], 5: labels[5]}, volume, CLASSES)
    read = read_seg(path, volume)
    assert read.covered.tolist() == [k in (2, 5) for k in range(8)]
    np.testing.assert_array_equal(read.labels[[2, 5]], labels[[2, 5]])
    assert not read.labels[[0, 1, 3, 4, 6, 7]].any()


def test_refusals(series, tmp_path):
    _, volume = series
    labels = _labels(volume)
    other = _samples(volume, labels, [0])
    other[0].set_metainfo(dict(series_uid='1.2.3'))
    with pytest.raises(PredictedSegError, match='series 1.2.3 .* one SEG per '
                       'series'):
        write_predicted_seg(tmp_path / 'x.dcm', other, volume, CLASSES)
    with pytest.raises(PredictedSegError, match='slice_index 8 is outside'):
        write_predicted_seg(tmp_path / 'x.dcm', {8: labels[0]}, volume, CLASSES)
    with pytest.raises(SegWriteError, match=r'label slices are \(20, 20\) but '
                       r'the source images are \[\(40, 40\)\]'):
        write_predicted_seg(tmp_path / 'x.dcm', {0: labels[0, :20, :20]},
                            volume, CLASSES)
    with pytest.raises(SegWriteError, match='5 class names; name every label'):
        write_predicted_seg(tmp_path / 'x.dcm', {0: labels[0] + 1}, volume,
                            CLASSES)
