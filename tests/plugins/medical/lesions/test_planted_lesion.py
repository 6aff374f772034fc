"""A lesion planted at known LPS coordinates in an oblique series whose
files are shuffled comes back as a finding within one voxel of its centre:
through the ``dicom`` source and :class:`LesionFindings` (the ``perception
infer`` path) and through :func:`predict_volume` on a loaded volume. The
detector is constructed, not trained: it boxes the pixels above -400 HU on
each slice, so what is tested is the geometry (slice order, affine,
oblique axes, pixel edges), the merge, and the outputs: findings JSON,
pictures and the DICOM SR (read back with highdicom and pydicom: it
references the source series and instances, its coordinates equal the
JSON's, and it carries the source's patient and study modules only)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip('pydicom')
hd = pytest.importorskip('highdicom')

from pydicom.dataset import FileDataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from perception.data.frames import frame_to_sample  # noqa: E402
from perception.data.geometry import PRED_SPACE_KEY  # noqa: E402
from perception.data.transforms import PackInputs  # noqa: E402
from perception.registry import POSTPROCESSORS  # noqa: E402
from perception.sources import open_source  # noqa: E402
from perception.structures import make_instances  # noqa: E402
from perception_medical import load_series, register  # noqa: E402
from perception_medical.lesions.predict import predict_volume  # noqa: E402
from perception_medical.lesions.sr import read_sr_findings  # noqa: E402

CT = '1.2.840.10008.5.1.4.1.1.2'
COMPREHENSIVE_3D_SR = '1.2.840.10008.5.1.4.1.1.88.34'
CENTRE = np.array([12.3, -20.7, 41.9])   # LPS mm
DIAMETER = 12.0
SPACING = (2.0, 0.9, 1.1)                 # slice, row, column mm
SHAPE = (20, 40, 44)
PATIENT = dict(PatientName='PLANTFAMILY^PLANTGIVEN', PatientID='PLANTID77',
               PatientBirthDate='19510203', PatientSex='F')
ELSEWHERE = dict(InstitutionName='PLANT HOSPITAL', PatientAddress='1 PLANT ROAD')


def _axes() -> np.ndarray:
    """Rows: row direction, column direction, slice normal (oblique)."""
    ax, az = np.deg2rad(17.0), np.deg2rad(11.0)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)],
                   [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0],
                   [0, 0, 1]])
    return (rz @ rx).T


def write_oblique_series(folder) -> dict:
    """A sphere of 200 HU in -1000 HU at CENTRE; files in shuffled order."""
    axes = _axes()
    n, rows, cols = SHAPE
    dz, dy, dx = SPACING
    origin = CENTRE - (cols / 2 - 0.3) * dx * axes[0] \
        - (rows / 2 + 0.4) * dy * axes[1] - (n / 2 - 0.6) * dz * axes[2]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    rng = np.random.default_rng(4)
    names = rng.permutation(n)
    jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
    sops = []
    folder.mkdir(parents=True)
    for k in range(n):
        pos = origin + k * dz * axes[2]
        lps = pos + ii[..., None] * dy * axes[1] + jj[..., None] * dx * axes[0]
        inside = np.linalg.norm(lps - CENTRE, axis=-1) < DIAMETER / 2
        stored = np.where(inside, 1224, 24).astype(np.uint16)  # -1024 offset
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT
        meta.MediaStorageSOPInstanceUID = sop = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset('', {}, file_meta=meta, preamble=b'\0' * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CT, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID = frame
        for key, value in {**PATIENT, **ELSEWHERE}.items():
            setattr(ds, key, value)
        ds.StudyDate, ds.StudyTime, ds.StudyID = '20200101', '101500', '7'
        ds.AccessionNumber, ds.ReferringPhysicianName = 'ACC1', 'REF^DOC'
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = 'CT', 3, k + 1
        ds.Manufacturer = 'Test'
        ds.ImagePositionPatient = [f'{v:.6f}' for v in pos]
        ds.ImageOrientationPatient = [f'{v:.8f}' for v in axes[:2].ravel()]
        ds.PixelSpacing = [dy, dx]
        ds.SliceThickness = dz
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        block = ds.private_block(0x0011, 'PLANT PRIVATE', create=True)
        block.add_new(0x01, 'LO', 'PLANTPRIVATEVALUE')
        ds.PixelData = stored.tobytes()
        ds.save_as(folder / f'{names[k]:03d}.dcm', enforce_file_format=True)
        sops.append(sop)
    return dict(folder=folder, series_uid=series, study_uid=study,
                frame_uid=frame, sops=sops)


class ThresholdDetector(torch.nn.Module):
    """A constructed detector: one box around the pixels above -400 HU of
    the centre channel, score 0.9, in source pixels (as Detector.predict)."""

    def test_step(self, data: dict) -> list:
        out = []
        for inputs, sample in zip(data['inputs'], data['data_samples']):
            hu = inputs[inputs.shape[0] // 2].numpy()
            rows, cols = np.nonzero(hu > -400)
            boxes = np.zeros((0, 4), np.float32)
            if len(rows):
                boxes = np.array([[cols.min(), rows.min(), cols.max() + 1,
                                   rows.max() + 1]], np.float32)
            sample.pred_instances = make_instances(
                torch.from_numpy(boxes), torch.zeros(len(boxes), dtype=torch.int64),
                scores=torch.full((len(boxes), ), 0.9))
            sample.set_metainfo({PRED_SPACE_KEY: 'source'})
            out.append(sample)
        return out


@pytest.fixture(scope='module')
def series(tmp_path_factory):
    return write_oblique_series(tmp_path_factory.mktemp('planted') / 'series')


def _within_one_voxel(volume_like_affine, centre_lps) -> np.ndarray:
    affine = np.asarray(volume_like_affine, np.float64)
    found = np.linalg.solve(affine[:3, :3], np.asarray(centre_lps) - affine[:3, 3])
    true = np.linalg.solve(affine[:3, :3], CENTRE - affine[:3, 3])
    return np.abs(found - true)


def test_infer_path_finds_the_planted_lesion_and_writes_json_pictures_sr(
        series, tmp_path):
    register()
    post_cls = POSTPROCESSORS.get('LesionFindings')
    detector = ThresholdDetector()
    with open_source(str(series['folder'])) as source:
        frames = list(source)
    assert post_cls.applies(frames[0])
    post = post_cls(tmp_path, ['nodule'], min_score=0.5)
    for frame in frames[::-1]:  # any order
        packed = PackInputs()(frame_to_sample(frame))
        (sample, ) = detector.test_step(dict(inputs=[packed['inputs']],
                                             data_samples=[packed['data_samples']]))
        post.add(frame, sample)
    summary = post.close()
    assert summary['series'] == 1 and summary['findings'] == 1

    record = json.loads((tmp_path / 'findings' / f"{series['series_uid']}.json").read_text())
    (finding, ) = record['findings']
    assert finding['series_uid'] == series['series_uid']
    assert finding['class_name'] == 'nodule' and finding['score'] == pytest.approx(0.9)
    affine = frames[0].meta['affine']
    off = _within_one_voxel(affine, finding['center_lps'])
    assert (off <= 1.0).all(), off
    # the merge takes every slice that cuts the sphere, and its widest section
    lo, hi = finding['slice_range']
    assert hi - lo + 1 == len(finding['slices']) >= 5
    assert abs(finding['diameter_mm'] - DIAMETER) <= 2 * max(SPACING[1:])
    text = json.dumps(record)
    for value in list(PATIENT.values()) + list(ELSEWHERE.values()):
        assert value not in text

    (picture, ) = (tmp_path / 'findings').glob('*_finding1.png')
    from PIL import Image
    with Image.open(picture) as im:
        assert im.size[0] == 8 * SHAPE[2] and np.asarray(im).std() > 10  # enlarged

    sr_path = tmp_path / 'findings' / f"{series['series_uid']}_sr.dcm"
    sr = pydicom.dcmread(sr_path)
    assert sr.SOPClassUID == COMPREHENSIVE_3D_SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == '1500'
    assert sr.StudyInstanceUID == series['study_uid']
    assert sr.SeriesInstanceUID != series['series_uid']
    # references: the source series and exactly the instances of the finding
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == series['study_uid']
    (ref_series, ) = evidence.ReferencedSeriesSequence
    assert ref_series.SeriesInstanceUID == series['series_uid']
    referenced = {item.ReferencedSOPInstanceUID for item in ref_series.ReferencedSOPSequence}
    assert referenced == {series['sops'][s['slice_index']] for s in finding['slices']}
    # coordinates equal the JSON's (read back through highdicom)
    (back, ) = read_sr_findings(sr_path)
    np.testing.assert_allclose(back['center_lps'], finding['center_lps'], atol=1e-3)
    assert back['diameter_mm'] == pytest.approx(finding['diameter_mm'], abs=1e-3)
    assert back['measured_diameter_mm'] == pytest.approx(finding['diameter_mm'], abs=1e-3)
    assert back['frame_of_reference_uid'] == series['frame_uid']
    # the source's patient module (and study module), nothing else of it
    for key, value in PATIENT.items():
        assert str(sr.get(key)) == value, key
    blob = sr_path.read_bytes()
    for value in list(ELSEWHERE.values()) + ['PLANTPRIVATEVALUE']:
        assert value.encode() not in blob, value


def test_predict_volume_on_the_loaded_volume_gives_the_same_finding(series, tmp_path):
    volume = load_series(str(series['folder']))
    (finding, ) = predict_volume(ThresholdDetector(), volume,
                                 slice_offsets=(-1, 0, 1), min_score=0.5)
    off = _within_one_voxel(volume.affine, finding.center_lps)
    assert (off <= 1.0).all(), off
    np.testing.assert_allclose(volume.lps_to_index(finding.center_lps),
                               volume.lps_to_index(CENTRE), atol=1.0)
