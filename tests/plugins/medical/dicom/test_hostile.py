"""Hostile DICOM files: native decoders never take the process down, every
malformed value is a DicomReadError naming the file and the attribute, and
normal-but-unusual files are not rejected (issue 20, items 1-3)."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')

from pydicom.datadict import tag_for_keyword  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.filewriter import write_dataset  # noqa: E402

from perception_medical import DicomReadError, load_series, read_dicom  # noqa: E402

CORPUS = Path(pydicom.__file__).parent / 'data' / 'test_files'


def _mutated(tmp_path, name: str, **attrs) -> str:
    ds = pydicom.dcmread(CORPUS / name)
    for key, value in attrs.items():
        setattr(ds, key, value)
    out = tmp_path / f'mutated_{name}'
    ds.save_as(out)
    return str(out)


def _in_subprocess(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter: a decoder that aborts must not
    take the test session with it."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout)


# -- 1. native decoders ----------------------------------------------------
def test_rle_rows_mismatch_is_a_read_error_not_a_rust_panic(tmp_path):
    # pylibjpeg-rle panics (pyo3_runtime.PanicException, a BaseException)
    # on RLE segments longer than Rows x Columns
    path = _mutated(tmp_path, 'MR_small_RLE.dcm', Rows=1, Columns=3)
    try:
        out = read_dicom(path)
    except DicomReadError as exc:
        assert path in str(exc)
    else:
        assert out.shape == (1, 3)


def test_a_rust_panic_in_any_decoder_is_caught(tmp_path, monkeypatch):
    from perception_medical.dicom import decoding
    path = _mutated(tmp_path, 'MR_small_RLE.dcm', Rows=1, Columns=3)
    # the Rust decoder first: it panics, pydicom's own decoder takes over
    monkeypatch.setitem(decoding.PREFERRED_PLUGINS, '1.2.840.10008.1.2.5',
                        ('pylibjpeg', 'pydicom'))
    assert read_dicom(path).shape == (1, 3)
    # the Rust decoder alone: the panic itself becomes a DicomReadError
    monkeypatch.setattr(decoding, '_plugins', lambda tsuid: ('pylibjpeg', ))
    with pytest.raises(DicomReadError) as info:
        read_dicom(path)
    assert path in str(info.value) and 'panic' in str(info.value).lower()


INCONSISTENT = [
    # gdcm aborts (exit 134) on a J2K component count that differs from
    # SamplesPerPixel: the header check refuses it first
    ('JPEG2000.dcm', dict(SamplesPerPixel=3, PhotometricInterpretation='RGB',
                          PlanarConfiguration=0), 'SamplesPerPixel'),
    ('JPEG2000.dcm', dict(Rows=5000), 'Rows'),
    ('SC_rgb_jpeg_dcmtk.dcm', dict(Columns=7), 'Columns'),
    ('MR_small_jpeg_ls_lossless.dcm', dict(SamplesPerPixel=3,
                                           PhotometricInterpretation='RGB',
                                           PlanarConfiguration=0),
     'SamplesPerPixel'),
    ('MR_small_jpeg_ls_lossless.dcm', dict(BitsAllocated=8, BitsStored=8,
                                           HighBit=7), 'BitsAllocated'),
    ('MR_small.dcm', dict(Rows=65535, Columns=65535), 'Rows'),
    ('MR_small.dcm', dict(BitsAllocated=12), 'BitsAllocated'),
    ('MR_small.dcm', dict(BitsStored=40), 'BitsStored'),
    ('MR_small.dcm', dict(NumberOfFrames=99999), 'NumberOfFrames'),
]


@pytest.fixture(scope='module')
def refusals(tmp_path_factory) -> tuple[list[str], dict[str, str], str]:
    """Every INCONSISTENT file read by read_dicom in ONE fresh interpreter
    (an abort would end it): (paths, path -> 'ERROR message' / 'ARRAY',
    the interpreter's stderr)."""
    folder = tmp_path_factory.mktemp('inconsistent')
    paths = []
    for k, (name, attrs, _) in enumerate(INCONSISTENT):
        sub = folder / str(k)
        sub.mkdir()
        paths.append(_mutated(sub, name, **attrs))
    run = _in_subprocess(f"""
        import json
        from perception_medical import DicomReadError, read_dicom
        for path in {paths!r}:
            try:
                read_dicom(path)
                result = 'ARRAY'
            except DicomReadError as exc:
                result = f'ERROR {{exc}}'
            print(json.dumps([path, result]), flush=True)
    """)
    results = dict(json.loads(line) for line in run.stdout.splitlines()
                   if line.startswith('['))
    return paths, results, f'exit {run.returncode}: {run.stderr[-2000:]}'


@pytest.mark.parametrize('k', range(len(INCONSISTENT)),
                         ids=[f'{n}-{w}' for n, _, w in INCONSISTENT])
def test_inconsistent_headers_are_refused_before_decoding(refusals, k):
    paths, results, stderr = refusals
    path, words = paths[k], INCONSISTENT[k][2]
    assert path in results, f'the interpreter died before this file: {stderr}'
    assert results[path].startswith('ERROR') and path in results[path], results[path]
    assert words in results[path], results[path]


def test_isolated_worker_turns_an_abort_into_a_read_error(tmp_path):
    from perception_medical.dicom.isolation import IsolatedReader
    with IsolatedReader(timeout_s=30) as reader:
        with pytest.raises(DicomReadError) as info:
            reader.call(str(tmp_path / 'poisoned.dcm'), 'os', 'abort')
        assert 'crashed' in str(info.value) and 'SIGABRT' in str(info.value)
        # the reader starts a fresh worker and goes on
        out = reader.read(str(CORPUS / 'CT_small.dcm'))
    np.testing.assert_array_equal(out, read_dicom(CORPUS / 'CT_small.dcm'))


def test_isolated_worker_times_out_and_goes_on(tmp_path):
    from perception_medical.dicom.isolation import IsolatedReader
    with IsolatedReader(timeout_s=2) as reader:
        with pytest.raises(DicomReadError, match='2 s'):
            reader.call(str(tmp_path / 'slow.dcm'), 'time', 'sleep', 30)
        assert reader.read(str(CORPUS / 'CT_small.dcm')).shape == (128, 128)


def test_read_dicom_isolate_matches_in_process(tmp_path):
    for name in ('CT_small.dcm', 'MR_small_RLE.dcm', 'JPEG2000.dcm'):
        np.testing.assert_array_equal(read_dicom(CORPUS / name, isolate=True),
                                      read_dicom(CORPUS / name))
    problems: list[str] = []
    read_dicom(CORPUS / 'MR_small_padded.dcm', problems=problems, isolate=True)
    assert problems and 'padding' in problems[0]
    with pytest.raises(DicomReadError, match='no such file'):
        read_dicom(tmp_path / 'nope.dcm', isolate=True)


def test_load_series_isolated_skips_a_poisoned_file(write_series, monkeypatch):
    from pydicom.uid import RLELossless

    from perception_medical.dicom import isolation
    info = write_series(n=6, shape=(8, 10), shuffle=False)
    # one slice RLE-compressed: native files are read with numpy, the
    # compressed one goes through the decoder, in the worker
    victim = Path(info['paths'][2])
    ds = pydicom.dcmread(victim)
    ds.compress(RLELossless, encoding_plugin='pydicom')
    poisoned = victim.with_name('zz_poisoned.dcm')
    ds.save_as(poisoned)
    victim.unlink()
    clean = load_series(info['folder'], isolate=True)
    np.testing.assert_array_equal(clean.array, info['hu'])

    class Poisoned(isolation.IsolatedReader):
        """The worker aborts (SIGABRT, exit 134) on the poisoned file."""

        def call(self, path, module, function, *args):
            if 'poisoned' in path:
                return super().call(path, 'os', 'abort')
            return super().call(path, module, function, *args)

    with Poisoned(timeout_s=30) as reader:
        monkeypatch.setattr(isolation._local, 'reader', reader, raising=False)
        vol = load_series(info['folder'], on_problem='warn', isolate=True)
    assert vol.array.shape[0] == 5
    np.testing.assert_array_equal(vol.array, np.delete(info['hu'], 2, axis=0))
    unreadable = [p.detail for p in vol.report.problems if p.code == 'unreadable']
    assert unreadable and 'zz_poisoned.dcm' in unreadable[0]
    assert 'crashed' in unreadable[0] and 'SIGABRT' in unreadable[0]
    assert any('zz_poisoned.dcm' in where for where, _ in vol.report.dropped)


# -- 2. malformed values -----------------------------------------------------
def _ct(tmp_path, dicom_factory, name='ct.dcm', **attrs) -> str:
    stored = np.arange(20, dtype=np.int16).reshape(4, 5)
    ds = dicom_factory.make_dataset(stored, syntax='implicit')
    for key, value in attrs.items():
        # written as text: implicit VR files take the VR (DS) from the
        # dictionary when read, so any bytes can be planted
        ds.add_new(tag_for_keyword(key), 'LO', value)
    return dicom_factory.save(ds, tmp_path / name)


@pytest.mark.parametrize('attrs, words', [
    (dict(RescaleSlope='1\\2'), 'RescaleSlope'),
    (dict(RescaleSlope='abc'), 'RescaleSlope'),
    (dict(RescaleIntercept='x1'), 'RescaleIntercept'),
    (dict(RescaleSlope='nan'), 'RescaleSlope'),
    (dict(RescaleIntercept='inf'), 'RescaleIntercept'),
    (dict(DoseGridScaling='1\\2'), 'DoseGridScaling'),
    (dict(DoseGridScaling='abc'), 'DoseGridScaling'),
    (dict(DoseGridScaling='nan'), 'DoseGridScaling'),
])
def test_malformed_rescale_values_name_the_attribute(tmp_path, dicom_factory,
                                                     attrs, words):
    path = _ct(tmp_path, dicom_factory, **attrs)
    with pytest.raises(DicomReadError) as info:
        read_dicom(path)
    assert path in str(info.value) and words in str(info.value)


def _lut(tmp_path, dicom_factory, descriptor, data, vr='US') -> str:
    stored = np.array([[0, 1, 2], [3, 300, 5]], np.uint16)
    ds = dicom_factory.make_dataset(stored, slope=None)
    item = Dataset()
    item.add_new(0x00283002, vr, descriptor)
    item.add_new(0x00283006, 'US', data)
    item.ModalityLUTType = 'HU'
    ds.ModalityLUTSequence = [item]
    return dicom_factory.save(ds, tmp_path / 'lut.dcm')


@pytest.mark.parametrize('descriptor, data', [
    ([4, 1, 40], [1, 2, 3, 4]),       # bits per entry out of range
    ([10, 1, 16], [1, 2, 3, 4]),      # 10 entries announced, 4 given
    ([4, 1], [1, 2, 3, 4]),           # two values
    ([4, 1, 16], []),                 # no data
])
def test_modality_lut_out_of_range_names_the_descriptor(tmp_path, dicom_factory,
                                                         descriptor, data):
    path = _lut(tmp_path, dicom_factory, descriptor, data)
    with pytest.raises(DicomReadError) as info:
        read_dicom(path)
    assert path in str(info.value) and 'LUT' in str(info.value)


@pytest.mark.parametrize('syntax', ['1.2.840.10008.1.2.4.5x', 'garbage', '9.9.9',
                                    '\u00ff\u00fe'])
def test_corrupted_transfer_syntax_is_a_read_error(tmp_path, dicom_factory, syntax):
    stored = np.arange(20, dtype=np.int16).reshape(4, 5)
    ds = dicom_factory.make_dataset(stored)
    path = dicom_factory.save(ds, tmp_path / 'ts.dcm')
    raw = Path(path).read_bytes()
    old = b'1.2.840.10008.1.2.1\x00'
    new = syntax.encode('latin-1').ljust(len(old), b'\x00')[:len(old)]
    assert raw.count(old) == 1
    Path(path).write_bytes(raw.replace(old, new))
    with pytest.raises(DicomReadError) as info:
        read_dicom(path)
    assert path in str(info.value)
    assert 'TransferSyntaxUID' in str(info.value) or 'transfer syntax' in str(info.value)


@pytest.mark.parametrize('vr', [b'\x00\x7f', b'ZZ', b'\xff\xff'])
@pytest.mark.parametrize('keyword', ['Rows', 'BitsAllocated', 'RescaleSlope'])
def test_corrupted_vr_bytes_are_a_read_error(tmp_path, dicom_factory, vr, keyword):
    stored = np.arange(20, dtype=np.int16).reshape(4, 5)
    ds = dicom_factory.make_dataset(stored)
    path = dicom_factory.save(ds, tmp_path / 'vr.dcm')
    raw = bytearray(Path(path).read_bytes())
    tag = ds[keyword].tag
    head = struct.pack('<HH', tag.group, tag.element)
    at = raw.index(head, 132)
    raw[at + 4:at + 6] = vr
    Path(path).write_bytes(bytes(raw))
    try:
        out = read_dicom(path, problems=[])
    except DicomReadError as exc:
        assert path in str(exc)
    else:   # pydicom may re-read the element sensibly; never junk shapes
        assert out.shape == (4, 5) and np.isfinite(out).all()


def test_nan_in_float_pixel_data_is_a_recorded_problem(tmp_path, dicom_factory):
    values = np.array([[1.5, np.nan], [np.inf, 2.0]], np.float32)
    ds = dicom_factory.make_dataset(np.zeros((2, 2), np.int16), slope=None)
    del ds.PixelData, ds.PixelRepresentation
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.FloatPixelData = values.tobytes()
    path = dicom_factory.save(ds, tmp_path / 'float.dcm')
    problems: list[str] = []
    out = read_dicom(path, problems=problems)
    np.testing.assert_array_equal(out, values)
    assert any('not finite' in p and path in p for p in problems), problems


# -- 3. no false rejects ---------------------------------------------------
def test_file_starting_with_a_group_length_is_read(tmp_path, dicom_factory):
    stored = np.arange(20, dtype=np.int16).reshape(4, 5)
    ds = dicom_factory.make_dataset(stored, syntax='implicit')
    del ds.file_meta
    group8 = Dataset()
    for elem in ds.group_dataset(0x0008):
        group8.add(elem)
    length = BytesIO()
    # PS3.5 7.2: (gggg,0000) UL holds the byte count of the group after it
    probe = pydicom.filebase.DicomFileLike(length)
    probe.is_little_endian, probe.is_implicit_VR = True, True
    write_dataset(probe, group8)
    buf = BytesIO()
    fp = pydicom.filebase.DicomFileLike(buf)
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    # pydicom does not write group lengths: put (0008,0000) UL first by hand
    head = struct.pack('<HHII', 0x0008, 0x0000, 4, len(length.getvalue()))
    buf = BytesIO(head + buf.getvalue())
    path = tmp_path / 'group_length_first.dcm'
    path.write_bytes(buf.getvalue())
    assert path.read_bytes()[:4] == b'\x08\x00\x00\x00'
    np.testing.assert_array_equal(read_dicom(path), stored - 1024.0)


@pytest.mark.parametrize('where', ['at_pixel_tag', 'inside_rows', 'inside_pixels'])
def test_file_cut_before_its_pixels_is_truncated(tmp_path, dicom_factory, where):
    stored = np.arange(20, dtype=np.int16).reshape(4, 5)
    ds = dicom_factory.make_dataset(stored)
    path = dicom_factory.save(ds, tmp_path / 'cut.dcm')
    raw = Path(path).read_bytes()
    pixel_at = raw.index(b'\xe0\x7f\x10\x00')
    rows_at = raw.index(b'\x28\x00\x10\x00US')
    cut = {'at_pixel_tag': pixel_at, 'inside_rows': rows_at + 9,
           'inside_pixels': pixel_at + 20}[where]
    Path(path).write_bytes(raw[:cut])
    with pytest.raises(DicomReadError) as info:
        read_dicom(path)
    text = str(info.value)
    assert path in text and 'truncated' in text and 'not an image' not in text


def test_ct_datasets_slice_loader_can_isolate(tmp_path):
    from perception.data import BadSampleError
    from perception_medical.datasets.base import LoadCTSlices
    path = str(CORPUS / 'MR_small_RLE.dcm')
    isolated = LoadCTSlices(isolate=True).transform({'slice_paths': [(path, -1)]})
    np.testing.assert_array_equal(isolated['img'][..., 0], read_dicom(path))
    broken = _mutated(tmp_path, 'MR_small_RLE.dcm', Rows=1, Columns=3, BitsAllocated=7)
    with pytest.raises(BadSampleError, match='BitsAllocated'):
        LoadCTSlices(isolate=True).transform({'slice_paths': [(broken, -1)]})


def test_gdcm_abort_on_crafted_jpeg_lossless_is_contained(tmp_path):
    """A byte flip in JPEG lossless data makes gdcm throw a C++ exception
    that ends in std::terminate (found by test_fuzz.py): gdcm runs in a
    worker process, so read_dicom raises instead of taking Python down."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'fuzz_worker', Path(__file__).with_name('fuzz_worker.py'))
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    data = (CORPUS / 'SC_rgb_jpeg_gdcm.dcm').read_bytes()
    path = tmp_path / 'gdcm_abort.dcm'
    path.write_bytes(fuzz.mutate(data, 'flip_pixels', 942671454))
    run = _in_subprocess(f"""
        from perception_medical import DicomReadError, read_dicom
        try:
            read_dicom({str(path)!r})
        except DicomReadError as exc:
            print('ERROR', exc)
    """)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith('ERROR') and 'SIGABRT' in run.stdout, run.stdout


def test_ct_slice_dataset_isolate_option(write_series, tmp_path):
    from perception_medical.datasets import DicomSliceDataset
    info = write_series(n=3, shape=(8, 10), shuffle=False)
    kwargs = dict(data_root=info['folder'], index_file=str(tmp_path / 'i.json'))
    isolated = DicomSliceDataset(isolate=True, **kwargs)
    plain = DicomSliceDataset(**kwargs)
    assert isolated.pipeline.transforms[0].isolate is True
    np.testing.assert_array_equal(isolated[1]['img'], plain[1]['img'])


def test_dicom_source_isolate_option(write_series):
    from perception.sources import open_source
    info = write_series(n=3, shape=(8, 10), shuffle=False)
    with open_source(info['folder'], isolate=True) as source:
        frames = list(source)
    assert source.isolate is True
    np.testing.assert_array_equal(np.stack([f.image for f in frames]), info['hu'])


@pytest.mark.parametrize('value', ['nan', 'inf', '1\\2', 'abc'])
def test_series_with_a_malformed_slope_names_it(write_series, value):
    """The series loader's raw read takes the slope from the header scan:
    a NaN slope there used to give an all-NaN slice silently."""
    info = write_series(n=4, shape=(4, 5), shuffle=False, syntax='implicit')
    victim = info['paths'][1]
    ds = pydicom.dcmread(victim)
    ds.add_new(tag_for_keyword('RescaleSlope'), 'LO', value)
    ds.save_as(victim, implicit_vr=True, little_endian=True)
    vol = load_series(info['folder'], on_problem='warn')
    assert np.isfinite(vol.array).all() and vol.array.shape[0] == 3
    skipped = dict(vol.report.skipped)
    assert 'RescaleSlope' in skipped[victim] and victim in skipped[victim]


def test_header_scan_refuses_an_absurd_frame_count_quickly(tmp_path, dicom_factory):
    """NumberOfFrames = 10**9 in a small file made the series index build
    one header per frame (found by test_fuzz.py): it is unreadable now."""
    path = _ct(tmp_path, dicom_factory, NumberOfFrames='1000000000')
    run = _in_subprocess(f"""
        from perception_medical.dicom.header_scan import scan_headers
        headers, bad = scan_headers([{path!r}])
        print(len(headers), bad[0].reason if bad else '')
    """, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith('0 ') and 'NumberOfFrames' in run.stdout, run.stdout


def test_forked_children_start_their_own_workers():
    """DataLoader workers fork: a child must not share its parent's worker
    pipes (gdcm always decodes in a worker)."""
    import multiprocessing
    paths = [str(CORPUS / n) for n in ('MR_small_jpeg_ls_lossless.dcm',
                                        'SC_rgb_jpeg_gdcm.dcm', 'JPEGLSNearLossless_16.dcm')]
    expected = [read_dicom(p) for p in paths]   # the parent now holds a gdcm worker
    with multiprocessing.get_context('fork').Pool(3) as pool:
        outs = pool.map(read_dicom, paths * 4, chunksize=1)
    for k, out in enumerate(outs):     # a reply meant for another child would differ
        np.testing.assert_array_equal(out, expected[k % 3])
    np.testing.assert_array_equal(read_dicom(paths[0]), expected[0])   # parent's fine


def test_a_fresh_workers_start_is_not_counted_against_the_file(monkeypatch):
    """A loaded machine can take seconds to start a worker and import
    pydicom: the file's timeout runs from when the worker is ready."""
    from perception_medical.dicom import isolation
    slow_start = [sys.executable, '-c',
                  'import time, runpy; time.sleep(3); '
                  "runpy.run_module('perception_medical.dicom.isolation', "
                  "run_name='__main__')"]
    real_popen = isolation.subprocess.Popen
    monkeypatch.setattr(isolation.subprocess, 'Popen',
                        lambda args, **kw: real_popen(slow_start, **kw))
    with isolation.IsolatedReader(timeout_s=2) as reader:
        assert reader.read(str(CORPUS / 'CT_small.dcm')).shape == (128, 128)
        assert reader.restarts == 0


def test_a_worker_that_cannot_start_says_so(monkeypatch):
    from perception_medical.dicom import isolation
    real_popen = isolation.subprocess.Popen
    monkeypatch.setattr(
        isolation.subprocess, 'Popen', lambda args, **kw: real_popen(
            [sys.executable, '-c', 'import sys; sys.exit("no pydicom here")'],
            **kw))
    with isolation.IsolatedReader(timeout_s=2) as reader:
        with pytest.raises(DicomReadError,
                           match='worker did not start: no pydicom here'):
            reader.read(str(CORPUS / 'CT_small.dcm'))
