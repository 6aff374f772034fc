"""DICOM SEG of the synthetic organ masks: written by synth-ct, read back onto
the series grid voxel-exact against organs.npz (shuffled file order,
oblique series, frames placed by UID or by position alone), the refusals
(another series, frames off the grid, another plane), and the masks
themselves against the phantom's HU."""
from __future__ import annotations

import json
import random

import numpy as np
import pydicom
import pytest

from perception.cli import main
from perception_medical import load_series
from perception_medical.dicom.seg_read import SegAlignmentError, SeriesGrid, read_seg
from perception_medical.synth.organs import ORGAN_CLASSES, read_organ_labels
from perception_medical.synth.study import write_ct_study


def _study(root, oblique):
    return write_ct_study(root, n_patients=1, series_per_patient=2, size=48,
                          n_slices=10, oblique=oblique, seed=4, quiet=True,
                          organ_masks=True)


@pytest.fixture(scope='module')
def axial(tmp_path_factory):
    return _study(tmp_path_factory.mktemp('axial'), False)


@pytest.fixture(scope='module')
def oblique(tmp_path_factory):
    return _study(tmp_path_factory.mktemp('oblique'), True)


def _files(study, s=0):
    return sorted((study.root / study.series[s]['folder']).glob('*.dcm'))


def _organs(study, s=0):
    entry = study.organs[study.series[s]['series_uid']]
    return study.root / entry['seg'], read_organ_labels(
        study.root / entry['labels'])


@pytest.mark.parametrize('name', ['axial', 'oblique'])
def test_seg_reads_back_voxel_exact_in_any_file_order(name, request):
    study = request.getfixturevalue(name)
    seg, (labels, classes) = _organs(study)
    files = [str(p) for p in _files(study)]
    random.Random(0).shuffle(files)
    volume = load_series(files)
    read = read_seg(seg, volume)
    assert read.classes == classes == list(ORGAN_CLASSES)
    assert read.labels.shape == volume.array.shape == labels.shape
    np.testing.assert_array_equal(read.labels, labels)
    assert read.covered.all()
    # every organ is there, and each has the phantom's HU in the image
    # (masks from the geometry, not from the pixels: the median tells)
    assert set(np.unique(labels)) == set(range(len(ORGAN_CLASSES)))
    hu = {c: float(np.median(volume.array[labels == i]))
          for i, c in enumerate(classes)}
    assert hu['background'] < -900 and hu['lungs'] < -700
    assert 20 < hu['liver'] < 100 and 0 < hu['heart'] < 150
    # bone painted over the organs (ribs, spine, sternum) is body, not organ
    # (a few voxels at 8 mm keep some bone by partial volume)
    for organ in ('lungs', 'liver', 'heart'):
        inside = volume.array[labels == classes.index(organ)]
        assert (inside > 450).mean() < 0.005, organ


def test_frames_placed_by_position_alone_or_by_uid_alone(axial, tmp_path):
    seg, (labels, _) = _organs(axial)
    volume = load_series(axial.root / axial.series[0]['folder'])
    grid = SeriesGrid.from_volume(volume)
    # by position: no SOP digests to match
    by_position = read_seg(seg, SeriesGrid(grid.series_uid, grid.shape,
                                           grid.affine))
    np.testing.assert_array_equal(by_position.labels, labels)
    # by UID: the plane positions removed from every frame
    ds = pydicom.dcmread(seg)
    for frame in ds.PerFrameFunctionalGroupsSequence:
        del frame.PlanePositionSequence
    ds.save_as(tmp_path / 'uid_only.dcm')
    np.testing.assert_array_equal(read_seg(tmp_path / 'uid_only.dcm',
                                           grid).labels, labels)


def test_seg_of_another_series_is_refused(axial):
    seg, _ = _organs(axial, 0)
    other = load_series(axial.root / axial.series[1]['folder'])
    with pytest.raises(SegAlignmentError, match='ReferencedSeriesSequence') \
            as err:
        read_seg(seg, other)
    assert str(seg) in str(err.value)
    assert axial.series[1]['series_uid'] in str(err.value)


def test_frame_off_the_grid_is_refused(axial, tmp_path):
    seg, _ = _organs(axial)
    grid = SeriesGrid.from_volume(load_series(_files(axial)))
    ds = pydicom.dcmread(seg)
    frame = ds.PerFrameFunctionalGroupsSequence[3]
    position = np.asarray(frame.PlanePositionSequence[0].ImagePositionPatient,
                          float)
    # half a slice along the normal: between two slices of the series
    position += 0.5 * grid.affine[:3, 0]
    frame.PlanePositionSequence[0].ImagePositionPatient = \
        [f'{v:.6f}' for v in position]
    path = tmp_path / 'off_grid.dcm'
    ds.save_as(path)
    with pytest.raises(SegAlignmentError, match=r'frame 4: ImagePositionPatient'
                       r' .* is off the grid'):
        read_seg(path, grid)
    # by position alone the same frame is refused too
    with pytest.raises(SegAlignmentError, match='off the grid'):
        read_seg(path, SeriesGrid(grid.series_uid, grid.shape, grid.affine))


def test_frame_contradicting_its_source_is_refused(axial, tmp_path):
    seg, _ = _organs(axial)
    grid = SeriesGrid.from_volume(load_series(_files(axial)))
    ds = pydicom.dcmread(seg)
    frame = ds.PerFrameFunctionalGroupsSequence[0]
    # a whole slice along the normal: on the grid, but not its source's slice
    position = np.asarray(frame.PlanePositionSequence[0].ImagePositionPatient,
                          float)
    k = np.linalg.solve(grid.affine[:3, :3], position - grid.affine[:3, 3])[0]
    position += grid.affine[:3, 0] * (-1 if k > 0.5 else 1)
    frame.PlanePositionSequence[0].ImagePositionPatient = \
        [f'{v:.6f}' for v in position]
    ds.save_as(tmp_path / 'contradicts.dcm')
    with pytest.raises(SegAlignmentError, match='contradicts itself'):
        read_seg(tmp_path / 'contradicts.dcm', grid)


def test_seg_in_another_plane_is_refused(axial, oblique):
    seg, _ = _organs(oblique)
    axial_grid = SeriesGrid.from_volume(load_series(_files(axial)))
    # the oblique SEG claims to be of the axial series: the plane differs
    grid = SeriesGrid(oblique.series[0]['series_uid'], axial_grid.shape,
                      axial_grid.affine)
    with pytest.raises(SegAlignmentError, match='ImageOrientationPatient .* '
                       'is not the plane of series'):
        read_seg(seg, grid)


def test_synth_ct_command_writes_organ_masks(tmp_path, capsys):
    out = tmp_path / 'out'
    assert main(['synth-ct', str(out), '--patients', '1', '--size', '32',
                 '--slices', '6', '--quiet', '--organ-masks']) == 0
    assert 'organ masks' in capsys.readouterr().out
    index = json.loads((out / 'organs/organs.json').read_text())
    (uid, entry), = index.items()
    assert (out / entry['seg']).is_file() and entry['classes'] == list(
        ORGAN_CLASSES)
    # the SEG lies beside dicom/, not inside a series folder
    assert not list((out / 'dicom').rglob('*seg*'))
    labels, _ = read_organ_labels(out / entry['labels'])
    volume = load_series(out / 'dicom')
    assert volume.meta['series_uid'] == uid
    np.testing.assert_array_equal(read_seg(out / entry['seg'], volume).labels,
                                  labels)


def test_organ_masks_leave_the_other_outputs_unchanged(tmp_path):
    kwargs = dict(n_patients=1, size=32, n_slices=6, seed=2, quiet=True)
    plain = write_ct_study(tmp_path / 'a', **kwargs)
    masked = write_ct_study(tmp_path / 'b', organ_masks=True, **kwargs)
    for name in ('manifest.json', 'annotations.csv', 'slice_boxes.csv',
                 'planted_phi.json'):
        assert (plain.root / name).read_bytes() == \
            (masked.root / name).read_bytes(), name
    a = sorted(p.relative_to(plain.root) for p in plain.dicom_dir.rglob('*.dcm'))
    b = sorted(p.relative_to(masked.root)
               for p in masked.dicom_dir.rglob('*.dcm'))
    assert a == b
    assert all((plain.root / p).read_bytes() == (masked.root / p).read_bytes()
               for p in a)
    assert not plain.organs and not (plain.root / 'organs').exists()
