"""Synthetic CT studies: real DICOM, lesions where annotations.csv says with
the stated contrast, planted PHI kept out of the DICOM folder."""
import csv
import json

import numpy as np
import pydicom
import pytest

from perception_medical import SynthCtCommand
from perception_medical.synth import planted_phi, write_ct_study


def _read_series(folder):
    """HU volume (z, y, x) and the index->LPS affine, from the headers alone
    (independent of the plugin's series reader)."""
    dss = [pydicom.dcmread(p) for p in folder.iterdir()]
    iop = np.array(dss[0].ImageOrientationPatient, float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    dss.sort(key=lambda d: float(np.dot(d.ImagePositionPatient, normal)))
    hu = np.stack([d.pixel_array * float(d.RescaleSlope)
                   + float(d.RescaleIntercept) for d in dss]).astype(np.float32)
    ipp = np.array([d.ImagePositionPatient for d in dss], float)
    dz = float(np.dot(ipp[1] - ipp[0], normal))
    dy, dx = (float(v) for v in dss[0].PixelSpacing)
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = dz * normal, dy * col, dx * row
    affine[:3, 3] = ipp[0]
    return hu, affine, dss


def _annotations(path):
    with open(path) as f:
        return [dict(uid=r['seriesuid'], xyz=np.array(
            [float(r['coordX']), float(r['coordY']), float(r['coordZ'])]),
            d=float(r['diameter_mm'])) for r in csv.DictReader(f)]


def _contrast(hu, affine, center, radius):
    """Mean HU inside 0.6 r minus the mean of the shell r+2 .. r+6 mm."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    mid = (np.linalg.inv(affine) @ np.r_[center, 1])[:3]
    half = np.ceil((radius + 7) / spacing)
    lo = np.maximum(mid - half, 0).astype(int)
    hi = np.minimum(mid + half + 1, hu.shape).astype(int)
    z, y, x = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)],
                          indexing='ij')
    idx = np.stack([z, y, x, np.ones_like(z)], -1).reshape(-1, 4)
    dist = np.linalg.norm((idx @ affine.T)[:, :3] - center, axis=1)
    flat = hu[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].reshape(-1)
    inner = flat[dist < 0.6 * radius]
    shell = flat[(dist > radius + 2) & (dist < radius + 6)]
    return float(inner.mean() - shell.mean()), len(inner)


@pytest.mark.parametrize('oblique', [False, True])
def test_lesions_at_annotated_lps_with_stated_contrast(tmp_path, oblique):
    study = write_ct_study(tmp_path, n_patients=2, size=96, n_slices=56,
                           coverage_mm=140, fov_mm=240, lesions_per_patient=3,
                           oblique=oblique, seed=3)
    anns = _annotations(study.annotations_csv)
    by_uid = {s['series_uid']: s for s in study.series}
    assert {a['uid'] for a in anns} == set(by_uid)
    checked = low_contrast = 0
    for entry in study.series:
        hu, affine, dss = _read_series(tmp_path / entry['folder'])
        np.testing.assert_allclose(affine, np.array(entry['affine']),
                                   atol=1e-4)
        if oblique:
            iop = np.array(dss[0].ImageOrientationPatient, float)
            assert abs(iop[0]) < 0.99 and abs(iop[4]) < 0.99
        for les in entry['lesions']:
            ann = [a for a in anns if a['uid'] == entry['series_uid']
                   and np.allclose(a['xyz'], les['center_lps'], atol=1e-3)]
            assert len(ann) == 1 and abs(ann[0]['d'] - les['diameter_mm']) < 1e-3
            assert 3.0 <= les['diameter_mm'] <= 30.0
            if les['diameter_mm'] < 10:
                continue  # too few voxels for a mean at this resolution
            measured, n = _contrast(hu, affine, ann[0]['xyz'],
                                    les['diameter_mm'] / 2)
            assert n >= 3
            # noise (12 HU, correlated) over a few voxels, plus edge voxels
            assert measured == pytest.approx(les['contrast_hu'], abs=20)
            checked += 1
            low_contrast += abs(les['contrast_hu']) < 110
    assert checked >= 2 and low_contrast >= 1


def test_lesion_voxel_is_lesion_valued(tmp_path):
    """The annotated centre, mapped through the inverse affine, is a voxel of
    the lesion (an oblique series: the mapping is not axis-aligned)."""
    study = write_ct_study(tmp_path, n_patients=1, size=96, n_slices=48,
                           coverage_mm=240, oblique=True, seed=5)
    entry = study.series[0]
    hu, affine, _ = _read_series(tmp_path / entry['folder'])
    for les in entry['lesions']:
        if les['diameter_mm'] < 12:
            continue
        zyx = (np.linalg.inv(affine) @ np.r_[les['center_lps'], 1])[:3]
        z, y, x = np.round(zyx).astype(int)
        patch = hu[z, y - 1:y + 2, x - 1:x + 2]
        assert abs(patch.mean() - les['hu']) < 30


def test_dicom_headers_phi_and_layout(tmp_path):
    study = write_ct_study(tmp_path, n_patients=3, series_per_patient=2,
                           size=32, n_slices=6, seed=1)
    phi = planted_phi(tmp_path)
    assert len(phi['patients']) == 3
    values = phi['values']
    assert len(values) == len(set(values)) == 3 * 8  # unique per patient
    # the PHI file is beside dicom/, never inside it
    assert not any(p.suffix == '.json' for p in study.dicom_dir.rglob('*'))
    names = set()
    for record in phi['patients']:
        for uid in record['series_uids']:
            entry = next(s for s in study.series if s['series_uid'] == uid)
            files = sorted((tmp_path / entry['folder']).iterdir())
            assert len(files) == 6
            names.update(f.name for f in files)
            ds = pydicom.dcmread(files[0])
            assert ds.Modality == 'CT' and ds.SOPClassUID == \
                '1.2.840.10008.5.1.4.1.1.2'
            for keyword, value in record['values'].items():
                assert str(ds.data_element(keyword).value) == value
            assert record['values']['PatientName'] in str(
                ds[0x0011, 0x1001].value)  # private copy
            # shuffled names: file name order is not slice order
            order = [int(pydicom.dcmread(f).InstanceNumber) for f in files]
            assert order != sorted(order)
    # two series per patient share the frame of reference, not the UID
    frames = {pydicom.dcmread(next((tmp_path / s['folder']).iterdir()))
              .FrameOfReferenceUID for s in study.series}
    assert len(study.series) == 6 and len(frames) == 3
    manifest = (tmp_path / 'manifest.json').read_text()
    assert not any(v in manifest for v in values)
    encodings = {(s['rescale_slope'], s['rescale_intercept'])
                 for s in study.series}
    assert len(encodings) == 3


def test_slice_boxes_cover_lesion_sections(tmp_path):
    study = write_ct_study(tmp_path, n_patients=1, size=64, n_slices=24,
                           seed=2)
    entry = study.series[0]
    _, affine, dss = _read_series(tmp_path / entry['folder'])
    sop_to_z = {d.SOPInstanceUID: k for k, d in enumerate(dss)}
    with open(study.slice_boxes_csv) as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {'sop_instance_uid', 'x1', 'y1', 'x2',
                                     'y2', 'label'}
    inv = np.linalg.inv(affine)
    centers = [(inv @ np.r_[les['center_lps'], 1])[:3]
               for les in entry['lesions']]
    for row in rows:
        z = sop_to_z[row['sop_instance_uid']]
        x1, y1, x2, y2 = (float(row[k]) for k in ('x1', 'y1', 'x2', 'y2'))
        # some lesion centre projects inside the box (pixel edges: +0.5)
        assert any(x1 <= c[2] + 0.5 <= x2 and y1 <= c[1] + 0.5 <= y2
                   and abs(c[0] - z) < 30 for c in centers)


def test_existing_output_needs_overwrite(tmp_path):
    write_ct_study(tmp_path, n_patients=1, size=16, n_slices=3)
    with pytest.raises(FileExistsError, match='overwrite'):
        write_ct_study(tmp_path, n_patients=1, size=16, n_slices=3)
    write_ct_study(tmp_path, n_patients=1, size=16, n_slices=4,
                   overwrite=True)
    assert len(list((tmp_path / 'dicom').rglob('*.dcm'))) == 4


def test_synth_ct_command(tmp_path, capsys):
    rc = SynthCtCommand().main([str(tmp_path / 'out'), '--patients', '2',
                                '--size', '32', '--slices', '5', '--oblique'])
    assert rc == 0
    assert 'planted PHI' in capsys.readouterr().out
    manifest = json.loads((tmp_path / 'out' / 'manifest.json').read_text())
    assert len(manifest['series']) == 2
    assert all(s['oblique'] for s in manifest['series'])
    assert len(list((tmp_path / 'out' / 'dicom').rglob('*.dcm'))) == 10


@pytest.mark.slow
def test_mae_ct_config_trains_on_a_synthetic_study(tmp_path):
    """The done-when of the issue: `perception synth-ct OUT`, then a few
    iterations of the MAE CT config through `perception train`."""
    import os

    from perception.cli import all_commands
    out = tmp_path / 'ct'
    assert SynthCtCommand().main([str(out), '--patients', '2', '--size', '64',
                                  '--slices', '6']) == 0
    config = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..',
                          'configs', 'pretrain',
                          'mae_vit-tiny-p16_1xb32-400e_ct-1ch.py')
    rc = all_commands()['train'].main([
        config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
        f'train_dataloader.dataset.data_root={out}',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1'])
    assert rc == 0
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
