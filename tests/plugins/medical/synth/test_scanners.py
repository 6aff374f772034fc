"""Scanner variety in synthetic studies: headers per scanner (round-robin
over patients), the low-dose scanner's noise visibly higher, the fields the
series index keeps for subgroup reports (bands, no identities), and the
lesion-balanced sampler over such a study."""
from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from perception.cli import main as perception_main
from perception_medical.datasets import LesionDetectionDataset
from perception_medical.datasets.sampler import LesionBalancedSampler
from perception_medical.datasets.scan_fields import age_band, scan_fields, thickness_band
from perception_medical.synth import write_ct_study
from perception_medical.synth.scanners import CATALOGUE, ScannerProfile, catalogue, parse_scanner


def _hu(folder) -> np.ndarray:
    out = []
    for path in sorted(folder.rglob('*.dcm')):
        ds = pydicom.dcmread(path)
        out.append((ds.InstanceNumber, ds.pixel_array * float(ds.RescaleSlope)
                    + float(ds.RescaleIntercept)))
    return np.stack([a for _, a in sorted(out, key=lambda t: t[0])])


def test_headers_noise_and_index_fields(tmp_path):
    scanners = list(catalogue(3)) + [ScannerProfile('Vega', 'Thin 1', 140, 8, 2.5)]
    kwargs = dict(n_patients=4, size=48, n_slices=6, coverage_mm=60.0,
                  lesions_per_patient=1, seed=3, quiet=True, scanners=scanners)
    study = write_ct_study(tmp_path / 'noisy', **kwargs)
    clean = write_ct_study(tmp_path / 'clean', noise_hu=0.0, **kwargs)
    stds = []
    for p, scanner in enumerate(scanners):
        folder = study.dicom_dir / f'patient_{p:02d}'
        ds = pydicom.dcmread(next(folder.rglob('*.dcm')), stop_before_pixels=True)
        assert (ds.Manufacturer, ds.ManufacturerModelName) == (scanner.manufacturer,
                                                               scanner.model)
        assert float(ds.KVP) == scanner.kvp and ds.PatientSex in ('M', 'F')
        assert len(ds.PatientAge) == 4 and ds.PatientAge.endswith('Y')
        diff = _hu(folder) - _hu(clean.dicom_dir / f'patient_{p:02d}')
        stds.append(diff[_hu(folder) > -900].std())
        assert study.series[p]['scanner']['model'] == scanner.model
    # 10, 16, 50, 8 HU of noise (the image's quantisation adds a little)
    np.testing.assert_allclose(stds, [10, 16, 50, 8], rtol=0.25)
    assert stds[2] > 3 * stds[0]
    assert study.series[3]['shape'][0] == 24  # 60 mm at 2.5 mm
    assert study.series[0]['shape'][0] == 6

    ds = LesionDetectionDataset(data_root=str(study.dicom_dir),
                                ann_file=str(study.annotations_csv), split='all',
                                index_file=str(tmp_path / 'index' / 'i.json'))
    fields = ds.metainfo['scan_fields']
    by_model = {f['model']: f for f in fields.values()}
    assert set(by_model) == {s.model for s in scanners}
    assert by_model['LowDose 16']['kvp'] == '80'
    assert by_model['Thin 1']['slice_thickness_band'] == '1.5-3 mm'
    assert by_model['Orion CT 128']['slice_thickness_band'] == '>5 mm'  # 10 mm
    index = (tmp_path / 'index' / 'i.json').read_text()
    phi = json.loads((study.root / 'planted_phi.json').read_text())['values']
    assert not [v for v in phi if v in index]  # no birth date, name...
    assert ds.get_data_info(0)['scan_fields'] == fields[ds.get_data_info(0)['series_uid']]


def test_scan_field_bands():
    assert [thickness_band(t) for t in (0.625, 1.5, 2.5, 3.0, 5.0, 7.5, None)] == [
        '<=1.5 mm', '<=1.5 mm', '1.5-3 mm', '1.5-3 mm', '3-5 mm', '>5 mm', 'unknown']
    assert [age_band(a) for a in (0, 9.9, 64, 89.9, 90, 104, None)] == [
        '0-9', '0-9', '60-69', '80-89', '90+', '90+', 'unknown']
    f = scan_fields(dict(PatientBirthDate='19500615', StudyDate='20200614',
                         PatientSex='f', KVP='120.0', SliceThickness='1.25'))
    assert f == dict(manufacturer='unknown', model='unknown', kvp='120',
                     slice_thickness_band='<=1.5 mm', patient_sex='F', age_band='60-69')
    assert scan_fields(dict(PatientAge='091Y'))['age_band'] == '90+'


def test_scanner_specs_and_command_errors(tmp_path, capsys):
    assert parse_scanner('Acme:CT 64:120:12:2.5') == ScannerProfile('Acme', 'CT 64', 120, 12, 2.5)
    with pytest.raises(ValueError, match='MANUFACTURER:MODEL:KVP:NOISE_HU'):
        parse_scanner('Acme:120')
    with pytest.raises(ValueError, match='--scanners must be 1..4'):
        catalogue(len(CATALOGUE) + 1)
    assert perception_main(['synth-ct', str(tmp_path / 's'), '--scanner', 'bad']) == 2
    err = capsys.readouterr().err
    assert "--scanner 'bad': expected MANUFACTURER:MODEL" in err and len(err.splitlines()) == 1
    assert perception_main(['synth-ct', str(tmp_path / 's'), '--patients', '2',
                            '--scanners', '2', '--size', '32', '--slices', '4',
                            '--quiet']) == 0
    assert 'scanners: Aurora 64, Orion CT 128' in capsys.readouterr().out


def test_balanced_sampler(tmp_path):
    study = write_ct_study(tmp_path / 's', n_patients=2, size=32, n_slices=20,
                           lesions_per_patient=1, seed=5, quiet=True)
    ds = LesionDetectionDataset(data_root=str(study.dicom_dir),
                                ann_file=str(study.annotations_csv), split='all',
                                index_file=str(tmp_path / 'index' / 'i.json'))
    flags = np.array([ds.get_data_info(i)['has_lesion'] for i in range(len(ds))])
    assert 0 < flags.mean() < 0.4
    sampler = LesionBalancedSampler(ds, positive_fraction=0.5, num_samples=4000, seed=1)
    drawn = np.array(list(sampler))
    assert abs(flags[drawn].mean() - 0.5) < 0.03 and len(sampler) == 4000
    sampler.set_epoch(1)
    assert list(sampler) != list(drawn)
    none = LesionBalancedSampler(ds, positive_fraction=0.0, seed=1)
    assert not flags[list(none)].any() and len(none) == len(ds)
    with pytest.raises(ValueError, match='positive_fraction'):
        LesionBalancedSampler(ds, positive_fraction=1.5)
