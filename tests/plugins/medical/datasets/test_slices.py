"""DicomSliceDataset: 2D / 2.5D slices over several series folders, a cached
series index without PHI."""
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from perception.registry import DATASETS
from perception_medical.datasets import series_index
from perception_medical.datasets.base import neighbours
from perception_medical.datasets.slices import DicomSliceDataset
from perception_medical.synth import planted_phi, write_ct_study


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp('ct')
    write_ct_study(root, n_patients=2, series_per_patient=1, size=32,
                   n_slices=8, seed=4)
    return root


def _hu_by_position(folder):
    """HU slices of a series ordered along the normal (reference reader)."""
    dss = [pydicom.dcmread(p) for p in folder.iterdir()]
    normal = np.cross(*np.reshape(dss[0].ImageOrientationPatient, (2, 3)))
    dss.sort(key=lambda d: float(np.dot(d.ImagePositionPatient, normal)))
    return [d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
            for d in dss], dss


def test_2d_slices_in_position_order(study, tmp_path):
    ds = DATASETS.build(dict(type='DicomSliceDataset', data_root=str(study),
                             index_file=str(tmp_path / 'idx.json'),
                             pipeline=[dict(type='PackInputs')]))
    assert len(ds) == 16  # 2 series x 8 slices; CSV/JSON files skipped
    manifest = json.loads((study / 'manifest.json').read_text())
    entry = manifest['series'][0]
    ref, dss = _hu_by_position(study / entry['folder'])
    picked = [i for i in range(len(ds))
              if ds.get_data_info(i)['series_uid'] == entry['series_uid']]
    for k, i in enumerate(picked):
        out = ds[i]
        assert out['inputs'].shape == (1, 32, 32)
        np.testing.assert_allclose(out['inputs'][0].numpy(), ref[k],
                                   atol=1e-3)
        meta = out['data_samples'].metainfo
        assert meta['slice_index'] == k
        assert meta['series_uid'] == entry['series_uid']
        np.testing.assert_allclose(meta['affine'], entry['affine'], atol=1e-3)
        assert os.path.samefile(meta['img_path'], dss[k].filename)


def test_25d_stack_of_neighbours(study, tmp_path):
    ds = DicomSliceDataset(data_root=str(study), num_slices=3,
                           index_file=str(tmp_path / 'idx.json'))
    entry = json.loads((study / 'manifest.json').read_text())['series'][1]
    ref, _ = _hu_by_position(study / entry['folder'])
    idx = [i for i in range(len(ds))
           if ds.get_data_info(i)['series_uid'] == entry['series_uid']]
    first, middle = ds[idx[0]]['img'], ds[idx[4]]['img']
    assert middle.shape == (32, 32, 3) and middle.dtype == np.float32
    for c, k in enumerate((3, 4, 5)):
        np.testing.assert_allclose(middle[..., c], ref[k], atol=1e-3)
    # the first slice repeats itself as its missing neighbour
    np.testing.assert_allclose(first[..., 0], ref[0], atol=1e-3)
    np.testing.assert_allclose(first[..., 2], ref[1], atol=1e-3)
    assert neighbours(0, 8, 5, 2) == [0, 0, 0, 2, 4]
    assert ds.slice_offsets == [-1, 0, 1]  # recorded in PretrainedCfg
    assert DicomSliceDataset(data_root=str(study), num_slices=5,
                             slice_stride=2, index_file=str(
                                 tmp_path / 'idx.json')).slice_offsets == [
        -4, -2, 0, 2, 4]
    with pytest.raises(ValueError, match='odd'):
        DicomSliceDataset(data_root=str(study), num_slices=2)


def test_several_series_folders(study, tmp_path):
    ds = DicomSliceDataset(
        data_root=str(study / 'dicom'),
        series_dirs=['patient_00', str(study / 'dicom' / 'patient_01')],
        index_file=str(tmp_path / 'idx.json'))
    assert len(ds) == 16
    assert len({ds.get_data_info(i)['series_uid']
                for i in range(len(ds))}) == 2


def test_index_cached_rebuilt_on_change_and_phi_free(tmp_path, monkeypatch):
    root = tmp_path / 'study'
    write_ct_study(root, n_patients=2, size=16, n_slices=4, seed=9)
    index_file = tmp_path / 'cache' / 'idx.json'
    DicomSliceDataset(data_root=str(root), index_file=str(index_file))
    text = index_file.read_text()
    leaked = [v for v in planted_phi(root)['values'] if v in text]
    assert leaked == []
    assert 'patient-0000' in text and 'patient-0001' in text

    def no_rebuild(*args, **kwargs):
        raise AssertionError('index rebuilt although nothing changed')

    monkeypatch.setattr(series_index, 'build_series_index', no_rebuild)
    assert len(DicomSliceDataset(data_root=str(root),
                                 index_file=str(index_file))) == 8
    monkeypatch.undo()
    # a third patient appears: the fingerprint changes, the index follows
    write_ct_study(tmp_path / 'more', n_patients=3, size=16, n_slices=4,
                   seed=9)
    shutil.copytree(tmp_path / 'more' / 'dicom' / 'patient_02',
                    root / 'dicom' / 'patient_02')
    assert len(DicomSliceDataset(data_root=str(root),
                                 index_file=str(index_file))) == 12


def test_default_index_location(study, tmp_path, monkeypatch):
    monkeypatch.setenv('PERCEPTION_CACHE', str(tmp_path / 'c'))
    DicomSliceDataset(data_root=str(study))
    assert len(list((tmp_path / 'c' / 'dicom_index').glob('*.json'))) == 1


def _name_folders_after_patients(root):
    """Rename patient and series folders the way hospital exports do
    (``FAMILY_ID_BIRTHDATE/ACCESSION_series_0``); returns every planted
    value, folder names included."""
    phi = planted_phi(root)
    needles = set(phi['values'])
    for record in phi['patients']:
        values = record['values']
        family = values['PatientName'].split('^')[0]
        named = f"{family}_{values['PatientID']}_{values['PatientBirthDate']}"
        folder = root / 'dicom' / named
        os.rename(root / 'dicom' / record['patient_folder'], folder)
        for series in folder.iterdir():
            os.rename(series, series.with_name(
                f"{values['AccessionNumber']}_{series.name}"))
        needles |= {named, family, values['PatientID'],
                    values['AccessionNumber'], values['PatientBirthDate']}
    return sorted(needles)


def _cache_leaks(cache, needles):
    found = []
    for path in cache.rglob('*'):
        if any(n.lower() in str(path.relative_to(cache)).lower()
               for n in needles):
            found.append(f'name {path}')
        if path.is_file():
            data = path.read_bytes()
            found += [f'{path} holds {n}' for n in needles
                      if n.encode() in data]
    return found


def test_index_phi_free_with_folders_named_after_patients(tmp_path,
                                                           monkeypatch):
    root = tmp_path / 'ARCHIVE_ST_MARY'
    write_ct_study(root, n_patients=2, size=16, n_slices=4, seed=5)
    needles = _name_folders_after_patients(root) + ['ARCHIVE_ST_MARY']
    cache = tmp_path / 'cache'
    monkeypatch.setenv('PERCEPTION_CACHE', str(cache))
    # a version-1 cache of these roots (relative paths) is cleaned away
    old = cache / 'dicom_index' / (hashlib.sha1(
        str(root / 'dicom').encode()).hexdigest()[:20] + '.json')
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps(dict(files=[[needles[0], -1]])))
    ds = DicomSliceDataset(data_root=str(root / 'dicom'))
    assert len(ds) == 8 and not old.exists()
    assert _cache_leaks(cache, needles) == []
    (index_file, ) = (cache / 'dicom_index').glob('*.json')
    index = json.loads(index_file.read_text())
    assert index['version'] == series_index.INDEX_VERSION == 3
    assert all(len(f) == 2 and '/' not in f[0] and os.sep not in f[0]
               for e in index['series'] for f in e['files'])
    key = cache / 'dicom_index' / series_index.KEY_FILE
    assert key.stat().st_mode & 0o077 == 0  # owner-only
    # the files are found again by walking the root: right pixels, in order
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert os.path.isfile(info['img_path'])
        assert str(root) in info['img_path']
        assert pydicom.dcmread(info['img_path']).SeriesInstanceUID \
            == info['series_uid']
    ref, _ = _hu_by_position(Path(ds.get_data_info(0)['img_path']).parent)
    np.testing.assert_allclose(ds[0]['img'][..., 0], ref[0], atol=1e-3)

    # cached: the second dataset does not rebuild
    def no_rebuild(*args, **kwargs):
        raise AssertionError('index rebuilt although nothing changed')

    monkeypatch.setattr(series_index, 'build_series_index', no_rebuild)
    assert len(DicomSliceDataset(data_root=str(root / 'dicom'))) == 8
    monkeypatch.undo()
    # a renamed folder changes the fingerprint: rebuilt, files found again
    monkeypatch.setenv('PERCEPTION_CACHE', str(cache))
    patient = next((root / 'dicom').iterdir())
    os.rename(patient, patient.with_name(patient.name + '_MOVED'))
    ds = DicomSliceDataset(data_root=str(root / 'dicom'))
    assert len(ds) == 8 and all(os.path.isfile(ds.get_data_info(i)['img_path'])
                                for i in range(len(ds)))
    assert _cache_leaks(cache, needles + ['MOVED']) == []
    # another key (index.key lost): the same index is rebuilt, not misread
    key.unlink()
    assert len(DicomSliceDataset(data_root=str(root / 'dicom'))) == 8
    assert len(list((cache / 'dicom_index').glob('*.json'))) == 2


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        DicomSliceDataset(data_root=str(tmp_path / 'nope'))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('x')
    with pytest.raises(FileNotFoundError, match='synth-ct'):
        DicomSliceDataset(data_root=str(tmp_path / 'empty'),
                          index_file=str(tmp_path / 'i.json'))


def test_bad_slice_skipped_or_named(tmp_path):
    root = tmp_path / 'study'
    write_ct_study(root, n_patients=1, size=16, n_slices=4, seed=2)
    ds = DicomSliceDataset(data_root=str(root), index_file=str(
        tmp_path / 'i.json'), on_bad_sample='skip', max_bad_fraction=1.0)
    broken = ds.get_data_info(1)['img_path']
    data = open(broken, 'rb').read()
    open(broken, 'wb').write(data[:len(data) - 200])  # truncated pixels
    from perception.data import BadSampleError
    ds.on_bad_sample = 'error'
    with pytest.raises(BadSampleError, match=os.path.basename(broken)):
        ds[1]
    ds.on_bad_sample = 'skip'  # other samples are drawn, bad ones counted
    out = ds[1]
    assert out is not None and out['img_path'] != broken
    assert ds.bad_samples and all(os.path.basename(broken) in b
                                  for b in ds.bad_samples)


def test_index_reads_no_pixels(study, tmp_path, monkeypatch):
    """The series index comes from the headers alone (issue 12, item 4):
    every pixel reader fails while it is built, and it equals what
    load_series says about each series."""
    from perception_medical.dicom import reading, series_build
    from perception_medical.dicom.series import load_series

    def no_pixels(*args, **kwargs):
        raise AssertionError('the series index read pixels')

    with monkeypatch.context() as m:
        m.setattr(series_build, '_read_pixels', no_pixels)
        m.setattr(reading, 'read_dicom', no_pixels)
        m.setattr(pydicom.dataset.Dataset, 'pixel_array',
                  property(no_pixels))
        index = series_index.load_series_index(
            [str(study)], str(tmp_path / 'i.json'))
    assert len(index['series']) == 2
    for entry in index['series']:
        vol = load_series(str(study), series_uid=entry['series_uid'])
        assert entry['shape'] == list(vol.array.shape)
        np.testing.assert_allclose(entry['affine'], vol.affine)
        np.testing.assert_allclose(entry['spacing'], vol.spacing)
        paths = [index.file(entry, k)[0] for k in range(len(vol.files))]
        assert paths == vol.files
