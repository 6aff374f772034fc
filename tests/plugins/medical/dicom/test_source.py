"""The DICOM frame source and the `dicom` benchmark."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('pydicom')

from perception.sources import open_source  # noqa: E402
from perception_medical import SeriesError, load_series  # noqa: E402
from perception_medical.dicom.source import DicomOpener, DicomSeriesSource  # noqa: E402


def test_open_source_yields_one_frame_per_slice(write_series):
    s = write_series(n=5, shape=(6, 7))
    with open_source(s['folder']) as source:
        assert isinstance(source, DicomSeriesSource)
        frames = list(source)
    vol = load_series(s['folder'])
    assert [f.index for f in frames] == list(range(5))
    for z, frame in enumerate(frames):
        assert frame.image.dtype == np.float32 and frame.image.shape == (6, 7)
        np.testing.assert_array_equal(frame.image, s['hu'][z])
        assert frame.meta['series_uid'] == s['series_uid']
        assert frame.meta['slice_index'] == z
        assert frame.meta['clock'] == 'index'
        np.testing.assert_allclose(frame.meta['affine'], vol.affine)
    assert source.events[-1].kind == 'eos'


def test_dicom_wins_over_image_openers(write_series):
    from perception.sources import registered_openers
    s = write_series(n=2)
    accepting = [o for o in registered_openers() if o.can_open(s['folder'])]
    assert type(accepting[0]) is DicomOpener and accepting[0].priority == 300


def test_single_files_and_projection_images(pydicom_test_files):
    frames = list(open_source(str(pydicom_test_files / 'CT_small.dcm')))
    assert len(frames) == 1 and frames[0].image.shape == (128, 128)
    cr = str(pydicom_test_files / 'dicomdirtests/77654033/CR1/6154')
    frames = list(open_source(cr))
    assert len(frames) == 1 and frames[0].meta['series_uid'] is None
    dose = list(open_source(str(pydicom_test_files / 'rtdose.dcm')))
    assert len(dose) == 15


def test_skipped_files_become_events(write_series, tmp_path):
    s = write_series(n=3)
    (tmp_path / 'series' / 'junk.bin').write_bytes(b'\x00' * 300)
    source = DicomOpener().open(s['folder'])
    assert [e.kind for e in source.events] == ['corrupt']
    assert 'junk.bin' in source.events[0].detail
    assert len(list(source)) == 3


def test_list_of_files_and_errors(write_series, tmp_path):
    s = write_series(n=3)
    opener = DicomOpener()
    assert opener.can_open(s['paths'])
    assert len(list(opener.open(s['paths']))) == 3
    (tmp_path / 'pngs').mkdir()
    assert not opener.can_open(str(tmp_path / 'pngs'))
    assert not opener.can_open('rtsp://127.0.0.1/x')
    with pytest.raises(TypeError):
        opener.open(s['folder'], stride=2)
    write_series(n=2, folder=s['folder'], prefix='other')
    with pytest.raises(SeriesError, match='series found'):
        open_source(s['folder'])


def test_benchmark_is_registered_and_checks_identity(capsys):
    from perception.benchmarks import all_benchmarks
    bench = all_benchmarks()['dicom']
    import argparse
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(['--slices', '6', '--size', '16',
                              '--repeats', '1'])
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    assert 'identical arrays: True' in out and 'speed-up' in out
    assert 'same geometry: True' in out and 'headers only' in out


def test_source_and_datasets_share_one_slice_reader(write_series,
                                                     monkeypatch):
    """Frames are read one slice at a time by read_slice, the reader the CT
    datasets use, and equal load_series' volume."""
    from perception_medical.datasets import base
    from perception_medical.dicom import reading
    from perception_medical.dicom import source as source_mod
    s = write_series(n=4, shape=(5, 6))
    calls = []
    real = reading.read_slice

    def counting(path, frame=-1, problems=None, isolate=False):
        calls.append(path)
        return real(path, frame, problems, isolate=isolate)

    monkeypatch.setattr(source_mod, 'read_slice', counting)
    with open_source(s['folder']) as src:
        assert not calls  # nothing read before the frames are asked for
        frames = list(src)
    vol = load_series(s['folder'])
    assert calls == vol.files
    for z, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.image, vol.array[z])
        np.testing.assert_array_equal(
            base.read_slices([(vol.files[z], -1)])[..., 0], frame.image)
