"""perception deid: PS3.15 Basic Profile + Modified Dates Option.

The reference list of attributes is DICOM PS3.15 Table E.1-1 as stored in
tests/plugins/medical/deid/data (edition named in the file), independent of
the plugin's own copy of the table.
"""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from perception_medical import DeidCommand
from perception_medical.deid import deidentify, read_key
from perception_medical.deid.profile import load_profile

TABLE = json.loads((Path(__file__).parent / 'data' / 'ps3.15_2024b_table_e1-1.json')
                   .read_text())
ROWS = TABLE['attributes']
KEY = b'k' * 32
TEST_FILES = Path(pydicom.__file__).parent / 'data' / 'test_files'
# tests that pair input and output files by name keep the names
pytestmark = pytest.mark.filterwarnings(r'ignore:deidentify\(keep_names')


def _tag(row) -> int | None:
    """The row's tag; repeating groups (50XX, 60XX) take their first group."""
    if 'odd' in row['id']:
        return None
    if row['id'] == '50xxxxxx':
        return 0x50003000  # a group length (xxxx=0000) is never written
    return int(row['id'].replace('x', '0'), 16)


def _value(vr: str, n: int):
    """A unique planted value for VR ``vr`` (strings carry a PHI marker)."""
    vr = vr.split(' ')[0]
    marker = f'PHI{n:04d}Q'
    if vr in ('LO', 'LT', 'SH', 'ST', 'UT', 'UC', 'PN'):
        return marker
    if vr in ('AE', 'CS'):
        return marker.upper()
    if vr == 'UI':
        return f'1.2.826.0.1.3680043.9999.{n}'
    if vr == 'DA':
        return (datetime.date(1990, 1, 1) + datetime.timedelta(days=n)).strftime('%Y%m%d')
    if vr == 'DT':
        day = datetime.date(1990, 1, 1) + datetime.timedelta(days=n)
        return day.strftime('%Y%m%d') + '101112'
    if vr == 'TM':
        return '101112'
    if vr == 'AS':
        return '042Y'
    if vr in ('DS', 'IS'):
        return str(1000 + n)
    if vr == 'UR':
        return f'http://phi{n:04d}q.example'
    if vr in ('US', 'SS', 'UL', 'SL', 'UV', 'SV', 'FL', 'FD'):
        return 1000 + n
    return marker.encode() + b'\0' * (len(marker) % 2)  # OB/OW/UN: even length


def _phi_item(n: int) -> Dataset:
    """A sequence item with PHI two levels deep."""
    item = Dataset()
    item.PatientName = f'PHI{n:04d}Q'
    item.AccessionNumber = f'PHI{n + 1:04d}Q'
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = f'1.2.826.0.1.3680043.9999.{n + 2}'
    inner.PersonName = f'PHI{n + 3:04d}Q'
    inner.add_new(0x00091010, 'LO', f'PHI{n + 4:04d}Q')  # private inside a sequence
    item.ReferencedStudySequence = Sequence([inner])
    return item


def _base(study: str, series: str, instance: str, patient: str, z: float) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
    ds.file_meta.MediaStorageSOPInstanceUID = instance
    ds.file_meta.SourceApplicationEntityTitle = 'PHISRCAE'
    ds.SOPClassUID, ds.SOPInstanceUID = '1.2.840.10008.5.1.4.1.1.2', instance
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.FrameOfReferenceUID = study[:50] + '.9'
    ds.PatientID, ds.PatientName = patient, patient + '^NAME'
    ds.StudyDate, ds.AcquisitionDateTime = '20200115', '20200116083000'
    ds.Modality = 'CT'
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 1, 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.ImagePositionPatient = [-100.0, -90.5, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 2.5
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = (np.arange(64, dtype=np.int16) * 7 + int(z)).tobytes()
    return ds


def _write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _everything_file(path: Path) -> tuple[Path, dict[int, object]]:
    """One file carrying every attribute of Table E.1-1 that a file can hold."""
    ds = _base(generate_uid(), generate_uid(), generate_uid(), 'PHI-PATIENT-0', 0.0)
    planted = {}
    for n, row in enumerate(ROWS):
        tag = _tag(row)
        if tag is None or tag >> 16 in (0x0000, 0x0002) or tag == 0xFFFCFFFC:
            continue  # command/meta groups and trailing padding: not dataset content
        vr = 'OB' if tag >> 16 == 0x5000 else dictionary_VR(tag)
        if vr == 'SQ':
            ds.add_new(tag, 'SQ', Sequence([_phi_item(5000 + 10 * n)]))
        else:
            ds.add_new(tag, vr.split(' ')[0], _value(vr, n))
        planted[tag] = ds[tag].value
    ds.add_new(0x00090010, 'LO', 'PHI CREATOR')
    ds.add_new(0x00091001, 'LO', 'PHI9990Q')
    ds.add_new(0x00091002, 'SQ', Sequence([_phi_item(9000)]))
    # an unlisted public sequence still gets its nested attributes handled
    ds.ReferencedSeriesSequence = Sequence([_phi_item(9100)])
    return _write(ds, path), planted


def test_table_is_ps315_2024b_and_plugin_matches_it():
    assert TABLE['edition'] == '2024b' and TABLE['standard'] == 'DICOM PS3.15'
    assert len(ROWS) == 621
    profile = load_profile()
    assert profile.edition == '2024b' and len(profile) == len(ROWS)
    for row in ROWS:
        tag = _tag(row)
        ours = profile.private_row if tag is None else profile.row_for(tag)
        assert ours is not None, row['tag']
        assert (ours.basic, ours.modified_dates) == (
            row['basicProfile'], row.get('rtnLongModifDatesOpt', '')), row['tag']


def test_every_attribute_of_table_e1_1_handled(tmp_path):
    src, planted = _everything_file(tmp_path / 'in' / 'a.dcm')
    report = deidentify(tmp_path / 'in', tmp_path / 'out', key=KEY, keep_names=True)
    out = pydicom.dcmread(tmp_path / 'out' / 'a.dcm')
    raw = (tmp_path / 'out' / 'a.dcm').read_bytes()
    orig = pydicom.dcmread(src)
    offset = (datetime.datetime.strptime(planted[0x00080020], '%Y%m%d')
              - datetime.datetime.strptime(out.StudyDate, '%Y%m%d')).days
    assert offset != 0
    checked = 0
    for row in ROWS:
        tag = _tag(row)
        if tag not in planted:
            continue
        checked += 1
        vr, basic = orig[tag].VR, row['basicProfile']
        option = row.get('rtnLongModifDatesOpt')
        got = out.get(tag)
        where = f"{row['tag']} {row['name']} ({basic}, option {option})"
        if option == 'C' and vr in ('DA', 'DT'):
            shifted = datetime.datetime.strptime(str(got.value)[:8], '%Y%m%d').date()
            assert (datetime.datetime.strptime(str(planted[tag])[:8], '%Y%m%d').date()
                    - shifted).days == offset, where
            assert str(got.value)[8:] == str(planted[tag])[8:], where  # time of day kept
        elif option == 'C' and vr == 'TM':
            assert got.value == planted[tag], where  # whole-day offset
        elif basic == 'X':
            assert got is None, where
        elif basic == 'K':
            assert got.value == planted[tag], where
        elif basic == 'U' or (basic == 'D' and vr == 'UI'):
            assert got is not None and got.value != planted[tag], where
            assert str(got.value).startswith('2.25.'), where
        elif basic in ('D', 'X/D', 'Z/D', 'X/Z/D') and vr != 'SQ':
            assert got is not None and not got.is_empty and got.value != planted[tag], where
        elif basic in ('Z', 'X/Z', 'Z/D', 'X/Z/D', 'X/Z/U*') or vr == 'SQ':
            assert got is None or got.is_empty or got.value != planted[tag], where
        else:
            pytest.fail(f'test does not know action {basic} of {where}')
        if isinstance(planted[tag], str) and vr not in ('TM', 'AS') and not (
                basic == 'K'):
            assert planted[tag].encode() not in raw, where
    # 621 rows less: private (checked below), (0000,1000) and (0000,1001) (command
    # group, never in files), (0002,0003) (file meta, checked below), (FFFC,FFFC)
    assert checked == 616
    # no planted marker anywhere, at any depth, private tags gone
    assert b'PHI' not in raw.replace(b'PHI-PATIENT', b'')
    assert not any(e.tag.is_private for e in out.iterall())
    assert b'PHI-PATIENT-0' not in raw
    assert out.PatientIdentityRemoved == 'YES'
    assert out.LongitudinalTemporalInformationModified == 'MODIFIED'
    assert 'Basic Application Confidentiality Profile' in ' '.join(out.DeidentificationMethod)
    assert {i.CodeValue for i in out.DeidentificationMethodCodeSequence} == {'113100', '113107'}
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert 'SourceApplicationEntityTitle' not in out.file_meta
    entry = report['files'][0]
    assert entry['private_removed'] >= 3 and 'PatientName' in entry['emptied']
    assert 'ReferencedSeriesSequence[0].PatientName' in entry['emptied']


def _series(root: Path, patient: str, n: int = 3, study: str | None = None) -> list[Path]:
    study, series = study or generate_uid(), generate_uid()
    paths, prev = [], None
    for i in range(n):
        ds = _base(study, series, generate_uid(), patient, float(i) * 2.5)
        if i:  # a reference across files must follow the referenced file
            ref = Dataset()
            ref.ReferencedSOPClassUID = ds.SOPClassUID
            ref.ReferencedSOPInstanceUID = prev
            ds.ReferencedImageSequence = Sequence([ref])
        prev = ds.SOPInstanceUID
        paths.append(_write(ds, root / f'{patient}_{i}.dcm'))
    return paths


def _read_all(folder: Path) -> dict[str, Dataset]:
    return {p.name: pydicom.dcmread(p) for p in sorted(folder.rglob('*.dcm'))}


def test_uids_consistent_across_series_and_runs(tmp_path):
    _series(tmp_path / 'in', 'P1')
    deidentify(tmp_path / 'in', tmp_path / 'a', key=KEY, keep_names=True)
    deidentify(tmp_path / 'in', tmp_path / 'b', key=KEY, keep_names=True)
    deidentify(tmp_path / 'in', tmp_path / 'c', key=b'another key, 16+ bytes', keep_names=True)
    a, b, c = _read_all(tmp_path / 'a'), _read_all(tmp_path / 'b'), _read_all(tmp_path / 'c')
    orig = _read_all(tmp_path / 'in')
    for attr in ('StudyInstanceUID', 'SeriesInstanceUID', 'FrameOfReferenceUID'):
        assert len({getattr(d, attr) for d in a.values()}) == 1
        assert {getattr(d, attr) for d in a.values()} != {getattr(d, attr) for d in orig.values()}
    assert len({d.SOPInstanceUID for d in a.values()}) == 3
    for name in a:
        assert a[name].SOPInstanceUID == b[name].SOPInstanceUID  # same key, same UIDs
        assert a[name].SOPInstanceUID != c[name].SOPInstanceUID  # other key, other UIDs
        assert a[name].PatientID == b[name].PatientID != 'P1'
    assert a['P1_1.dcm'].ReferencedImageSequence[0].ReferencedSOPInstanceUID == \
        a['P1_0.dcm'].SOPInstanceUID
    assert a['P1_0.dcm'].SOPClassUID == orig['P1_0.dcm'].SOPClassUID  # registry UIDs stay


def test_dates_shift_one_offset_per_patient(tmp_path):
    _series(tmp_path / 'in', 'P1')
    _series(tmp_path / 'in', 'P2')
    deidentify(tmp_path / 'in', tmp_path / 'out', key=KEY, keep_names=True)
    offsets = {}
    for name, ds in _read_all(tmp_path / 'out').items():
        study = datetime.datetime.strptime(ds.StudyDate, '%Y%m%d')
        acq = datetime.datetime.strptime(ds.AcquisitionDateTime, '%Y%m%d%H%M%S')
        assert acq - study == datetime.timedelta(days=1, hours=8, minutes=30)  # kept
        offsets.setdefault(name[:2], set()).add((datetime.datetime(2020, 1, 15) - study).days)
        assert ds.LongitudinalTemporalInformationModified == 'MODIFIED'
    assert all(len(v) == 1 for v in offsets.values())
    assert all(365 <= next(iter(v)) <= 3650 for v in offsets.values())


def _digest_tree(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob('*')) if p.is_file()}


def test_pixels_geometry_identical_and_input_untouched(tmp_path):
    _series(tmp_path / 'in' / 'ct', 'P1')
    for name in ('JPEG2000.dcm', 'MR_small.dcm', 'rtdose.dcm'):  # real files, real codecs
        (tmp_path / 'in' / 'real').mkdir(parents=True, exist_ok=True)
        (tmp_path / 'in' / 'real' / name).write_bytes((TEST_FILES / name).read_bytes())
    before = _digest_tree(tmp_path / 'in')
    deidentify(tmp_path / 'in', tmp_path / 'out', key=KEY, keep_names=True)
    assert _digest_tree(tmp_path / 'in') == before
    orig, out = _read_all(tmp_path / 'in'), _read_all(tmp_path / 'out')
    assert set(orig) == set(out)
    geometry = ('ImagePositionPatient', 'ImageOrientationPatient', 'PixelSpacing',
                'SliceThickness', 'Rows', 'Columns', 'RescaleSlope', 'RescaleIntercept',
                'GridFrameOffsetVector', 'NumberOfFrames')
    for name in orig:
        assert out[name].PixelData == orig[name].PixelData, name
        assert out[name].file_meta.TransferSyntaxUID == orig[name].file_meta.TransferSyntaxUID
        for attr in geometry:
            assert out[name].get(attr) == orig[name].get(attr), (name, attr)
    assert np.array_equal(out['JPEG2000.dcm'].pixel_array, orig['JPEG2000.dcm'].pixel_array)


def test_structure_kept_non_dicom_skipped_burned_in_flagged(tmp_path):
    paths = _series(tmp_path / 'in' / 'deep' / 'er', 'P1', n=1)
    ds = pydicom.dcmread(paths[0])
    ds.BurnedInAnnotation = 'YES'
    _write(ds, tmp_path / 'in' / 'burned.dcm')
    (tmp_path / 'in' / 'notes.txt').write_text('PHI0001Q lives here')
    (tmp_path / 'in' / 'DICOMDIR').write_bytes((TEST_FILES / 'dicomdirtests' / 'DICOMDIR')
                                               .read_bytes())
    report = deidentify(tmp_path / 'in', tmp_path / 'out', key=KEY,
                        report=tmp_path / 'r.json', keep_names=True)
    assert (tmp_path / 'out' / 'deep' / 'er' / 'P1_0.dcm').is_file()
    assert not (tmp_path / 'out' / 'notes.txt').exists()
    assert not (tmp_path / 'out' / 'DICOMDIR').exists()
    by_input = {e['input']: e for e in report['files']}
    assert by_input['notes.txt']['status'] == 'skipped'
    assert 'DICOMDIR' in by_input['DICOMDIR']['reason']
    assert by_input['burned.dcm']['burned_in_annotation'] is True
    assert report['summary'] == {'files': 4, 'written': 2, 'skipped': 2, 'failed': 0,
                                 'burned_in_annotation': 1}
    assert json.loads((tmp_path / 'r.json').read_text()) == report


def test_a_failing_file_is_reported_not_written(tmp_path, monkeypatch, capsys):
    from perception_medical.deid import deidentifier
    _series(tmp_path / 'in', 'P1', n=2)
    apply = deidentifier.Deidentifier.apply

    def flaky(self, ds):
        if ds.ImagePositionPatient[2] > 0:
            raise ValueError('boom')
        return apply(self, ds)
    monkeypatch.setattr(deidentifier.Deidentifier, 'apply', flaky)
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / 'out'),
                               '--keep-names']) == 1
    assert 'could not be de-identified' in capsys.readouterr().out
    report = json.loads((tmp_path / 'out' / 'deid_report.json').read_text())
    status = {e['input']: e['status'] for e in report['files']}
    assert status == {'P1_0.dcm': 'written', 'P1_1.dcm': 'failed'}
    assert not (tmp_path / 'out' / 'P1_1.dcm').exists()


def test_dataset_level_api_drops_group_lengths():
    from perception_medical.deid.deidentifier import Deidentifier
    ds = _base('1.2.3', '1.2.3.4', '1.2.3.4.5', 'P9', 0.0)
    ds.add_new(0x00080000, 'UL', 1234)  # stale after any change
    changes = Deidentifier(KEY).apply(ds)
    assert (0x0008, 0x0000) not in ds and 'PatientName' in changes.emptied
    assert 'Deidentifier(profile=PS3.15 2024b)' == repr(Deidentifier(KEY))


def test_report_and_output_hold_no_original_value_nor_key(tmp_path):
    _everything_file(tmp_path / 'in' / 'a.dcm')
    key_file = tmp_path / 'salt.bin'
    key_file.write_bytes(b'S3cr3t-K3y-' * 3)
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / 'out'),
                               '--salt-file', str(key_file)]) == 0
    text = (tmp_path / 'out' / 'deid_report.json').read_bytes()
    assert b'PHI0' not in text and b'PHI-PATIENT' not in text and b'1.2.826.0.1' not in text
    assert b'19900' not in text  # no planted date
    for f in (tmp_path / 'out').rglob('*'):
        data = f.read_bytes()
        assert b'S3cr3t' not in data and KEY not in data


def test_hash_names_hide_patient_folder_names(tmp_path):
    _series(tmp_path / 'in' / 'DOE_JOHN_1961', 'P1', n=2)
    report = deidentify(tmp_path / 'in', tmp_path / 'out', key=KEY)  # the default
    names = [p.name for p in (tmp_path / 'out').rglob('*')]
    assert not any('DOE' in n or 'P1' in n for n in names), names
    assert 'DOE' not in json.dumps(report)
    assert len(list((tmp_path / 'out').rglob('*.dcm'))) == 2  # suffix kept


@pytest.mark.parametrize('out', ['in', 'in/sub', '.'])
def test_refuses_to_write_into_or_over_input(tmp_path, out, capsys):
    _series(tmp_path / 'in', 'P1', n=1)
    before = _digest_tree(tmp_path / 'in')
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / out)]) == 2
    message = capsys.readouterr().out
    assert 'IN' in message and 'choose' in message
    assert _digest_tree(tmp_path / 'in') == before


def test_bad_arguments_say_how_to_fix(tmp_path, capsys):
    _series(tmp_path / 'in', 'P1', n=1)
    (tmp_path / 'short').write_bytes(b'abc')
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / 'o'),
                               '--salt-file', str(tmp_path / 'short')]) == 2
    assert 'at least 16' in capsys.readouterr().out
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'x').write_text('x')
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / 'full')]) == 2
    assert 'not an empty folder' in capsys.readouterr().out
    assert DeidCommand().main([str(tmp_path / 'nope'), str(tmp_path / 'o2')]) == 2
    assert 'does not exist' in capsys.readouterr().out
    with pytest.raises(ValueError, match='at least 16'):
        read_key(tmp_path / 'short')
