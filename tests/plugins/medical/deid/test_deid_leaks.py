"""De-identification leaks nothing planted (issue 20, items 6-7): the
preamble, file and folder names, the report, and every text attribute of
pydicom's data dictionary, at top level and nested in sequences."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from perception_medical import DeidCommand
from perception_medical.deid import deidentify
from perception_medical.deid.profile import CLEAN, load_profile

KEY = b'k' * 32
TEXT_VRS = ('PN', 'LO', 'SH', 'LT', 'ST', 'UT', 'UC', 'DA', 'DT', 'TM')
# What may keep its planted value: the documented retain list (coded
# vocabulary, how pixels map to units, the device make and the kernel)...
RETAINED = {'CodeValue', 'CodingSchemeDesignator', 'CodingSchemeVersion', 'CodeMeaning',
            'LongCodeValue', 'RescaleType', 'WindowCenterWidthExplanation',
            'LUTExplanation', 'ModalityLUTType', 'Manufacturer',
            'ManufacturerModelName', 'ConvolutionKernel'}


def _times_of_day_kept() -> set[int]:
    """... and times of day (TM) the Modified Dates option keeps (C): the
    offset is whole days."""
    profile = load_profile()
    return {tag for tag, entry in DicomDictionary.items()
            if entry[0] == 'TM' and (row := profile.row_for(tag)) is not None
            and row.action('TM') == CLEAN}


def _base() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
    ds.file_meta.MediaStorageSOPInstanceUID = uid = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = '1.2.840.10008.5.1.4.1.1.2', uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = 'CT'
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 1, 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.PixelData = np.arange(16, dtype=np.int16).tobytes()
    return ds


def _value(vr: str, n: int) -> str:
    if vr == 'DA':
        return f'{1901 + n // 300:04d}{1 + n // 28 % 12:02d}{1 + n % 28:02d}'
    if vr == 'TM':
        return f'101112.{n:06d}'
    if vr == 'DT':
        return f'{_value("DA", n)}101112.{n:06d}'
    return f'Q{n:05d}X'


def _plant(ds: Dataset, start: int, planted: dict) -> None:
    """A unique value in every text attribute of the dictionary."""
    n = start
    for tag, (vr, _vm, _name, _retired, keyword) in sorted(DicomDictionary.items()):
        if vr not in TEXT_VRS or tag >> 16 in (0x0000, 0x0002, 0xFFFE) or tag in ds:
            continue
        value = _value(vr, n)
        ds.add_new(tag, vr, value)
        planted[value] = (keyword, tag, vr)
        n += 1


def _survivors(out: Dataset, raw: bytes, planted: dict) -> set[tuple[str, str]]:
    values = {str(e.value) for e in out.iterall() if e.VR in TEXT_VRS and e.value}
    found = set()
    for value, (keyword, tag, vr) in planted.items():
        if value in values or (vr not in ('DA', ) and value.encode() in raw):
            found.add((keyword, vr))
    return found


def test_no_planted_text_survives_except_the_retain_list(tmp_path):
    ds, planted = _base(), {}
    _plant(ds, 0, planted)
    content = Dataset()                 # D sequence: items recursed as dummies
    content.ValueType, content.RelationshipType = 'TEXT', 'CONTAINS'
    _plant(content, 20000, planted)
    ds.ContentSequence = Sequence([content])
    unlisted = Dataset()                # a public sequence the table does not list
    _plant(unlisted, 40000, planted)
    ds.ReferencedSeriesSequence = Sequence([unlisted])
    src = tmp_path / 'in' / 'a.dcm'
    src.parent.mkdir()
    ds.save_as(src, enforce_file_format=True)
    assert len(planted) > 3 * 800
    deidentify(tmp_path / 'in', tmp_path / 'out', key=KEY)
    [written] = (tmp_path / 'out').rglob('*.dcm')
    out = pydicom.dcmread(written)
    survivors = _survivors(out, written.read_bytes(), planted)
    allowed = {DicomDictionary[t][4] for t in _times_of_day_kept()} | RETAINED
    leaked = sorted(s for s in survivors if s[0] not in allowed)
    assert not leaked, f'{len(leaked)} planted attributes survive: {leaked[:40]}'
    # the retain list is what the plugin documents, and it does survive
    from perception_medical.deid.deidentifier import RETAINED_TEXT
    assert set(RETAINED_TEXT.values()) == RETAINED
    assert {k for k, _ in survivors} >= RETAINED
    # the content item is still a content item
    assert out.ContentSequence[0].ValueType == 'TEXT'


def _tree(root: Path) -> None:
    folder = root / 'DOE_JOHN_1961'
    folder.mkdir(parents=True)
    for i in range(2):
        ds = _base()
        ds.PatientName = 'DOE^JOHN'
        ds.preamble = b'DOE^JOHN 1961-02-03 MRN 4711'.ljust(128, b'\x00')
        ds.save_as(folder / f'DOE_JOHN_ct_{i}.dcm', enforce_file_format=True)
    (folder / 'DOE_JOHN_notes.txt').write_text('not DICOM')
    (folder / 'Doe.Jane').write_text('not DICOM either')


def _names(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob('*')]


def test_preamble_names_and_report_carry_no_input_names(tmp_path):
    _tree(tmp_path / 'in')
    report = deidentify(tmp_path / 'in', tmp_path / 'out', key=KEY)
    written = sorted((tmp_path / 'out').rglob('*.dcm'))
    assert len(written) == 2
    for path in written:
        raw = path.read_bytes()
        assert raw[:128] == bytes(128) and raw[128:132] == b'DICM'
    names = _names(tmp_path / 'out')
    assert not any('DOE' in n.upper() or 'JOHN' in n.upper() for n in names), names
    text = json.dumps(report)
    for word in ('DOE', 'Doe', 'JOHN', 'Jane', '1961', '.txt'):
        assert word not in text, word
    skipped = [e for e in report['files'] if e['status'] == 'skipped']
    assert len(skipped) == 2 and all('input' not in e and e['id'] for e in skipped)
    assert report['names'].startswith('hashed')


def test_keep_names_opts_out_with_a_warning(tmp_path, capsys):
    _tree(tmp_path / 'in')
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / 'out'),
                               '--keep-names', '--quiet']) == 0
    captured = capsys.readouterr()
    assert 'WARNING' in captured.out and 'names' in captured.out
    assert (tmp_path / 'out' / 'DOE_JOHN_1961' / 'DOE_JOHN_ct_0.dcm').is_file()
    report = json.loads((tmp_path / 'out' / 'deid_report.json').read_text())
    assert {e.get('input') for e in report['files']} >= {'DOE_JOHN_1961/DOE_JOHN_notes.txt'}
    with pytest.warns(UserWarning, match='keep_names'):
        deidentify(tmp_path / 'in', tmp_path / 'out2', key=KEY, keep_names=True)


def test_deid_shows_progress_and_ends_with_one_summary_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr('perception.progress._QUIET', None)  # another test's --quiet
    monkeypatch.delenv('PERCEPTION_QUIET', raising=False)
    _tree(tmp_path / 'in')
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / 'out')]) == 0
    captured = capsys.readouterr()
    assert 'de-identifying' in captured.err and '4/4' in captured.err
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith('perception deid: 2 file(s) written') and 'skipped' in last
    assert DeidCommand().main([str(tmp_path / 'in'), str(tmp_path / 'out3'),
                               '--quiet']) == 0
    captured = capsys.readouterr()
    assert captured.err == '' and 'written' in captured.out
