"""load_series: pydicom's dicomdirtests outcomes and synthetic hard cases."""
from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')

from pydicom.dataset import Dataset  # noqa: E402

from perception_medical import SeriesError, Volume, load_series  # noqa: E402

OBLIQUE = (np.cos(0.3), np.sin(0.3), 0.0,
           -np.sin(0.3) * np.cos(0.2), np.cos(0.3) * np.cos(0.2), np.sin(0.2))


# -- pydicom's dicomdirtests: the outcomes are binding -------------------
def test_ct2_gap_is_missing_slices(dicomdir_tests):
    with pytest.raises(SeriesError) as info:
        load_series(dicomdir_tests / '77654033/CT2')
    assert info.value.code == 'missing_slices' and '202.5' in str(info.value)


def test_ct2n_localizers_only_is_too_few_slices(dicomdir_tests):
    with pytest.raises(SeriesError) as info:
        load_series(dicomdir_tests / '98892001/CT2N')
    assert info.value.code == 'too_few_slices'
    assert 'localizer' in str(info.value)


def test_mr2_three_series_listed_then_mixed_orientation(dicomdir_tests):
    folder = dicomdir_tests / '98892003/MR2'
    with pytest.raises(SeriesError) as info:
        load_series(folder)
    assert info.value.code == 'several_series'
    uids = info.value.candidates
    assert len(uids) == 3 and all(uid in str(info.value) for uid in uids)
    uid = next(u for u in uids if u.endswith('.136'))
    with pytest.raises(SeriesError) as info:
        load_series(folder, series_uid=uid)
    assert info.value.code == 'mixed_orientation'


def test_mr700_radial_is_mixed_orientation(dicomdir_tests):
    with pytest.raises(SeriesError) as info:
        load_series(dicomdir_tests / '98892003/MR700')
    assert info.value.code == 'mixed_orientation'


def test_tiny_alpha_without_pixels_is_missing_attribute(dicomdir_tests):
    for path in (dicomdir_tests / 'TINY_ALPHA',
                 dicomdir_tests / 'TINY_ALPHA/DICOMDIR'):
        with pytest.raises(SeriesError) as info:
            load_series(path)
        assert info.value.code == 'missing_attribute'
        assert 'PixelData' in str(info.value)


def test_ct5n_loads_with_positions_spacing(dicomdir_tests):
    vol = load_series(dicomdir_tests / '98892001/CT5N')
    assert vol.array.shape == (5, 16, 16) and vol.array.dtype == np.float32
    assert vol.spacing[0] == pytest.approx(2.5)
    assert vol.report.problems == [] and vol.report.skipped == []
    # sorted by position along the normal, first slice lowest z
    assert np.all(np.diff(vol.positions[:, 2]) > 0)
    ref = [pydicom.dcmread(f.split(' [')[0]) for f in vol.files]
    from pydicom.pixels import apply_modality_lut
    np.testing.assert_array_equal(
        vol.array, np.stack([apply_modality_lut(d.pixel_array, d)
                             for d in ref]).astype(np.float32))


def test_whole_dicomdir_lists_every_series(dicomdir_tests):
    with pytest.raises(SeriesError) as info:
        load_series(dicomdir_tests / 'DICOMDIR')
    assert info.value.code == 'several_series'
    assert len(info.value.candidates) >= 10


# -- synthetic series ------------------------------------------------------
def test_oblique_shuffled_series_round_trips_geometry(write_series):
    s = write_series(n=7, shape=(6, 9), spacing=1.7, orientation=OBLIQUE,
                     origin=(12.5, -30.25, 101.0), pixel_spacing=(0.6, 0.9))
    vol = load_series(s['folder'])
    np.testing.assert_array_equal(vol.array, s['hu'])
    assert vol.spacing == pytest.approx((1.7, 0.6, 0.9))
    row, col = np.asarray(OBLIQUE[:3]), np.asarray(OBLIQUE[3:])
    z, y, x = np.meshgrid(np.arange(7), np.arange(6), np.arange(9),
                          indexing='ij')
    zyx = np.stack([z, y, x], -1).astype(float)
    lps = vol.index_to_lps(zyx)
    by_hand = (s['positions'][z] + y[..., None] * 0.6 * col
               + x[..., None] * 0.9 * row)
    np.testing.assert_allclose(lps, by_hand, atol=1e-4)
    np.testing.assert_allclose(vol.lps_to_index(lps), zyx, atol=1e-9)
    np.testing.assert_allclose(vol.affine[:3, 3], s['positions'][0], atol=1e-4)


def test_list_of_files_and_dicomdir_give_the_same_volume(write_series,
                                                         tmp_path):
    s = write_series(n=5)
    from_list = load_series(list(reversed(s['paths'])))
    np.testing.assert_array_equal(from_list.array, s['hu'])
    from pydicom.fileset import FileSet
    fs = FileSet()
    for p in s['paths']:
        fs.add(p)
    fs.write(tmp_path / 'media')
    vol = load_series(tmp_path / 'media' / 'DICOMDIR')
    np.testing.assert_array_equal(vol.array, s['hu'])


def test_two_series_refuse_and_list_both(write_series, tmp_path):
    a = write_series(n=4, folder=tmp_path / 'f')
    b = write_series(n=3, folder=tmp_path / 'f', origin=(0, 0, 500),
                     prefix='b')
    with pytest.raises(SeriesError) as info:
        load_series(tmp_path / 'f')
    assert info.value.code == 'several_series'
    assert a['series_uid'] in str(info.value)
    assert b['series_uid'] in str(info.value)
    vol = load_series(tmp_path / 'f', series_uid=b['series_uid'])
    np.testing.assert_array_equal(vol.array, b['hu'])
    with pytest.raises(SeriesError) as info:
        load_series(tmp_path / 'f', series_uid='1.2.3')
    assert info.value.code == 'series_not_found'


def test_gantry_tilt_policies(write_series):
    tilt = np.radians(15)
    step = np.array([0.0, 2.0 * np.tan(tilt), 2.0])   # y shifts with z
    s = write_series(n=6, shape=(12, 12), step=step, pixel_spacing=(1.0, 1.0))
    with pytest.raises(SeriesError) as info:
        load_series(s['folder'])
    assert info.value.code == 'gantry_tilt' and '15.00 degrees' in str(
        info.value)
    warned = load_series(s['folder'], on_problem={'gantry_tilt': 'warn'})
    assert warned.report.codes == ['gantry_tilt']
    # the sheared affine puts every slice origin exactly where DICOM says
    np.testing.assert_allclose(
        warned.index_to_lps([[k, 0, 0] for k in range(6)]), s['positions'],
        atol=1e-4)
    np.testing.assert_array_equal(warned.array, s['hu'])
    fixed = load_series(s['folder'], on_problem={'gantry_tilt': 'resample'})
    assert fixed.meta['resampled']
    np.testing.assert_allclose(fixed.affine[:3, 0], [0, 0, 2.0], atol=1e-6)
    # slice 1 moved by 2*tan(15deg) = 0.536 rows: row 5 of the output is
    # row 5 - 0.536 of the input, linearly interpolated
    expected = s['hu'][1, 4] * 0.536 + s['hu'][1, 5] * (1 - 0.536)
    np.testing.assert_allclose(fixed.array[1, 5], expected, rtol=2e-3,
                               atol=1.5)


def test_duplicate_position(write_series):
    positions = [(0, 0, 0), (0, 0, 2), (0, 0, 2), (0, 0, 4)]
    s = write_series(positions=positions, shuffle=False)
    with pytest.raises(SeriesError) as info:
        load_series(s['folder'])
    assert info.value.code == 'duplicate_position'
    vol = load_series(s['folder'], on_problem={'duplicate_position': 'warn'})
    assert vol.array.shape[0] == 3 and len(vol.report.dropped) == 1
    assert vol.spacing[0] == pytest.approx(2.0)


def test_missing_slice_policies(write_series):
    z = [0, 2, 4, 6, 10, 12]   # slice at 8 missing
    s = write_series(positions=[(0, 0, v) for v in z])
    with pytest.raises(SeriesError) as info:
        load_series(s['folder'])
    assert info.value.code == 'missing_slices'
    largest = load_series(s['folder'], on_problem='keep_largest')
    assert largest.array.shape[0] == 4 and largest.spacing[0] == 2.0
    np.testing.assert_array_equal(largest.array, s['hu'][:4])
    assert len(largest.report.dropped) == 2
    warned = load_series(s['folder'], on_problem={'missing_slices': 'warn'})
    assert warned.array.shape[0] == 6 and 'missing_slices' in \
        warned.report.codes
    np.testing.assert_allclose(warned.positions[:, 2], z)
    assert warned.spacing[0] == pytest.approx(2.0)   # typical, not average
    grid = load_series(s['folder'], on_problem={'missing_slices': 'resample'})
    assert grid.array.shape[0] == 7 and grid.meta['resampled']
    np.testing.assert_allclose(grid.array[4], (s['hu'][3] + s['hu'][4]) / 2,
                               rtol=1e-6, atol=1e-3)
    np.testing.assert_array_equal(grid.array[5], s['hu'][4])


def test_uneven_spacing(write_series):
    s = write_series(positions=[(0, 0, v) for v in (0, 2, 4, 5.2, 7.2)])
    with pytest.raises(SeriesError) as info:
        load_series(s['folder'])
    assert info.value.code == 'uneven_spacing'


def test_unreadable_files_are_skipped_named_and_counted(write_series,
                                                        tmp_path, pydicom_test_files):
    s = write_series(n=4)
    (tmp_path / 'series' / 'notes.txt').write_text('not dicom')
    import shutil
    shutil.copy(pydicom_test_files / 'test-SR.dcm', tmp_path / 'series')
    vol = load_series(s['folder'])
    np.testing.assert_array_equal(vol.array, s['hu'])
    skipped = [p for p, _ in vol.report.skipped]
    assert len(skipped) == 2 and any(p.endswith('notes.txt') for p in skipped)
    assert vol.report.codes == ['unreadable']
    with pytest.raises(SeriesError) as info:
        load_series(s['folder'], on_problem={'unreadable': 'error'})
    assert info.value.code == 'unreadable' and 'notes.txt' in str(info.value)


def test_truncated_slice_is_unreadable_not_a_crash(write_series):
    s = write_series(n=4, shuffle=False)
    with open(s['paths'][3], 'r+b') as f:
        f.truncate(f.seek(0, 2) - 50)
    vol = load_series(s['folder'], on_problem={'unreadable': 'warn'})
    assert vol.array.shape[0] == 3
    assert any('truncated' in p.detail for p in vol.report.problems)


def test_localizer_dropped(write_series, tmp_path):
    s = write_series(n=4)
    write_series(n=1, folder=s['folder'], series_uid=s['series_uid'],
                 prefix='scout',
                 orientation=(1, 0, 0, 0, 0, -1),
                 image_type=('ORIGINAL', 'PRIMARY', 'LOCALIZER'))
    vol = load_series(s['folder'])
    assert vol.array.shape[0] == 4
    assert 'localizer' in vol.report.dropped[0][1]


def test_meta_holds_no_phi(write_series):
    s = write_series(n=3)
    vol = load_series(s['folder'])
    text = repr(vol.meta)
    for phi in ('Doe', 'PID-12345', '19700101', 'General Hospital'):
        assert phi not in text
    assert vol.meta['modality'] == 'CT'
    assert vol.meta['photometric_interpretation'] == 'MONOCHROME2'
    assert 'decoder' in vol.meta


def test_multi_echo_at_same_positions(write_series, tmp_path):
    uid = pydicom.uid.generate_uid()
    frame_ref = pydicom.uid.generate_uid()
    e1 = write_series(n=3, series_uid=uid, EchoNumbers=1,
                      frame_of_reference=frame_ref)
    e2 = write_series(n=3, series_uid=uid, EchoNumbers=2,
                      folder=e1['folder'], frame_of_reference=frame_ref,
                      prefix='echo2')
    with pytest.raises(SeriesError) as info:
        load_series(e1['folder'])
    assert info.value.code == 'several_series'
    assert f'{uid}#echo=2' in info.value.candidates
    vol = load_series(e1['folder'], series_uid=f'{uid}#echo=2')
    np.testing.assert_array_equal(vol.array, e2['hu'])


def test_native_fast_path_matches_pydicom(write_series, tmp_path):
    from perception_medical import read_dicom
    for k, kwargs in enumerate([
            dict(bits_stored=12, slope=0.37, intercept=-7.25),
            dict(syntax='big', slope=2.0, intercept=-1000),
            dict(syntax='implicit', dtype=np.uint16, slope=1.0,
                 intercept=0.0)]):
        s = write_series(n=3, folder=tmp_path / f's{k}', **kwargs)
        vol = load_series(s['folder'])
        assert vol.meta['decoder'] == 'numpy raw read'
        np.testing.assert_array_equal(
            vol.array, np.stack([read_dicom(p) for p in
                                 sorted(s['paths'], key=lambda p: s[
                                     'paths'].index(p))]))


def _enhanced(dicom_factory, path, frames=4):
    stored = np.arange(frames * 12, dtype=np.int16).reshape(frames, 3, 4)
    ds = dicom_factory.make_dataset(
        stored[0], sop_class='1.2.840.10008.5.1.4.1.1.2.1', slope=None,
        position=None, orientation=None, pixel_spacing=None)
    ds.NumberOfFrames, ds.PixelData = frames, stored.tobytes()
    shared, orient, measures = Dataset(), Dataset(), Dataset()
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [0.5, 0.25]
    shared.PlaneOrientationSequence = [orient]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    order = [2, 0, 3, 1]      # frames out of spatial order
    items = []
    for k in range(frames):
        item, pos, pvt = Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = [1.0, 2.0, 3.0 * order[k]]
        pvt.RescaleSlope, pvt.RescaleIntercept = 1 + k, -k
        item.PlanePositionSequence = [pos]
        item.PixelValueTransformationSequence = [pvt]
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = items
    dicom_factory.save(ds, path)
    hu = np.stack([stored[k] * (1.0 + k) - k for k in range(frames)])
    return hu[np.argsort(order)].astype(np.float32)


def test_enhanced_multiframe_geometry_from_functional_groups(
        dicom_factory, tmp_path):
    expected = _enhanced(dicom_factory, tmp_path / 'enh.dcm')
    vol = load_series(tmp_path / 'enh.dcm')
    np.testing.assert_array_equal(vol.array, expected)
    assert vol.spacing == pytest.approx((3.0, 0.5, 0.25))
    np.testing.assert_allclose(vol.affine[:3, 3], [1, 2, 0])


def test_rt_dose_geometry_from_grid_frame_offsets(dicom_factory, tmp_path):
    stored = np.arange(3 * 2 * 2, dtype=np.uint32).reshape(3, 2, 2)
    ds = dicom_factory.make_dataset(
        stored[0], sop_class='1.2.840.10008.5.1.4.1.1.481.2',
        modality='RTDOSE', slope=None, position=(-4.0, -6.0, 10.0))
    ds.NumberOfFrames, ds.PixelData = 3, stored.tobytes()
    ds.DoseGridScaling, ds.GridFrameOffsetVector = 0.01, [0, 2.5, 5]
    ds.FrameIncrementPointer = 0x3004000C
    dicom_factory.save(ds, tmp_path / 'dose.dcm')
    vol = load_series(tmp_path / 'dose.dcm')
    assert vol.spacing[0] == pytest.approx(2.5)
    np.testing.assert_allclose(vol.positions[:, 2], [10, 12.5, 15])
    np.testing.assert_allclose(vol.array, stored * 0.01, rtol=1e-6)


def test_bad_policy_is_a_value_error(write_series):
    s = write_series(n=2)
    with pytest.raises(ValueError, match='unknown policy'):
        load_series(s['folder'], on_problem='ignore')
    with pytest.raises(ValueError, match='unknown reason code'):
        load_series(s['folder'], on_problem={'tilt': 'warn'})


def test_volume_type(write_series):
    assert isinstance(load_series(write_series(n=2)['folder']), Volume)


def test_few_slices_with_a_long_gap_are_missing_slices(write_series):
    s = write_series(positions=[(0, 0, 0), (0, 0, 2), (0, 0, 10)])
    with pytest.raises(SeriesError) as info:
        load_series(s['folder'])
    assert info.value.code == 'missing_slices'
    vol = load_series(iter(s['paths']), on_problem='keep_largest')
    assert vol.array.shape[0] == 2 and vol.spacing[0] == pytest.approx(2.0)


def test_dicomdir_file_ids_match_case_insensitively(write_series, tmp_path):
    import os

    from pydicom.fileset import FileSet
    s = write_series(n=3)
    fs = FileSet()
    for p in s['paths']:
        fs.add(p)
    fs.write(tmp_path / 'cd')
    for root, dirs, files in os.walk(tmp_path / 'cd', topdown=False):
        for name in files + dirs:
            if name != 'DICOMDIR':
                os.rename(os.path.join(root, name),
                          os.path.join(root, name.lower()))
    vol = load_series(tmp_path / 'cd' / 'DICOMDIR')
    np.testing.assert_array_equal(vol.array, s['hu'])


# positions as scanners write them: rounded to 2 decimals (0.625 mm slices
# alternate 0.62 / 0.63 mm steps); SimpleITK and highdicom load these
ROUNDED_ORIENTATIONS = {
    'axial': (1, 0, 0, 0, 1, 0),
    'oblique': (0.9659258, 0.2588190, 0, 0, 0.8660254, -0.5),
}


@pytest.mark.parametrize('n', [40, 6])
@pytest.mark.parametrize('name', sorted(ROUNDED_ORIENTATIONS))
def test_positions_rounded_to_two_decimals_are_a_regular_series(write_series, name, n):
    orientation = np.asarray(ROUNDED_ORIENTATIONS[name], float)
    orientation[3:] -= orientation[:3] * (orientation[:3] @ orientation[3:])
    orientation[3:] /= np.linalg.norm(orientation[3:])
    normal = np.cross(orientation[:3], orientation[3:])
    exact = np.array([-120.3, 85.17, -300.0]) + np.arange(n)[:, None] * 0.625 * normal
    s = write_series(positions=np.round(exact, 2), orientation=orientation,
                     shape=(4, 4))
    vol = load_series(s['folder'])
    assert vol.report.codes == []
    assert vol.spacing[0] == pytest.approx(0.625, abs=2e-3)
    np.testing.assert_allclose(vol.index_to_lps(np.array([n - 1.0, 0, 0])),
                               np.round(exact[-1], 2), atol=0.02)


@pytest.mark.parametrize('gap, code', [(0.625 * 2, 'missing_slices'),
                                       (0.625 * 1.1, 'uneven_spacing'),
                                       (0.625 * 0.9, 'uneven_spacing')])
def test_rounded_positions_still_refuse_real_gaps(write_series, gap, code):
    z = list(np.arange(12) * 0.625) + [11 * 0.625 + gap + 0.625 * k for k in range(12)]
    s = write_series(positions=[(0, 0, round(v, 2)) for v in z], shape=(4, 4))
    with pytest.raises(SeriesError) as info:
        load_series(s['folder'])
    assert info.value.code == code
