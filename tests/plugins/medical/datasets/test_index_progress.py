"""Series indexing shows progress and ends with one summary line that
names no folder (DICOM folders are often named after patients)."""
from perception_medical.datasets.series_index import build_series_index


def test_index_progress_and_summary(write_series, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr('perception.progress._QUIET', None)  # another test's --quiet
    monkeypatch.delenv('PERCEPTION_QUIET', raising=False)
    info = write_series(n=5, folder=tmp_path / 'DOE_JANE' / 'ct')
    (tmp_path / 'DOE_JANE' / 'notes.txt').write_text('not DICOM')
    index = build_series_index([str(tmp_path / 'DOE_JANE')], key=b'k' * 32)
    assert len(index['series']) == 1 and index['skipped_files'] == 1
    captured = capsys.readouterr()
    assert 'indexing DICOM headers' in captured.err and '6/6' in captured.err
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith('series index: 1 series from 5 DICOM files')
    assert '1 other files skipped' in last and 'DOE' not in captured.out + captured.err
    assert info['series_uid'] == index['series'][0]['series_uid']


def test_index_quiet(write_series, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr('perception.progress._QUIET', None)
    monkeypatch.setenv('PERCEPTION_QUIET', '1')
    write_series(n=3)
    build_series_index([str(tmp_path / 'series')], key=b'k' * 32)
    captured = capsys.readouterr()
    assert captured.err == '' and captured.out.startswith('series index: 1 series')
