"""read_dicom / DicomReadError: pydicom's corpus and hand-made hard cases."""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')

from pydicom.dataset import Dataset  # noqa: E402
from pydicom.pixels import apply_color_lut, apply_modality_lut  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from perception_medical import DicomReadError, read_dicom  # noqa: E402
from perception_medical.dicom.reading import DicomProblemWarning  # noqa: E402

CORPUS = Path(pydicom.__file__).parent / 'data' / 'test_files'
CORPUS_FILES = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob('*')
                      if p.is_file())
LOSSY = {'1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51',
         '1.2.840.10008.1.2.4.81', '1.2.840.10008.1.2.4.91'}
HAS_LIBJPEG = importlib.util.find_spec('libjpeg') is not None


def pydicom_reference(path: str):
    """pydicom's own pixel path plus the modality transform, or None when
    pydicom cannot decode the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ds = pydicom.dcmread(path)
            arr = ds.pixel_array
    except Exception:
        return None, None
    if ds.PhotometricInterpretation == 'PALETTE COLOR':
        return apply_color_lut(arr, ds).astype(np.float32), ds
    if ds.SamplesPerPixel > 1:
        return arr.astype(np.float32), ds
    out = apply_modality_lut(arr, ds)
    if 'DoseGridScaling' in ds:
        out = out * float(ds.DoseGridScaling)
    return np.asarray(out, np.float32), ds


@pytest.mark.parametrize('name', CORPUS_FILES)
def test_corpus_file_reads_like_pydicom_or_raises(name):
    path = str(CORPUS / name)
    ref, ds = pydicom_reference(path)
    try:
        ours = read_dicom(path, problems=[])
    except DicomReadError as exc:
        assert path in str(exc)
        assert ref is None, f'pydicom decodes {name} but read_dicom refused'
        return
    assert ref is not None, f'read_dicom read {name}, pydicom cannot'
    assert ours.dtype == np.float32 and ours.dtype.isnative
    assert ours.shape == ref.shape
    syntax = str(ds.file_meta.TransferSyntaxUID)
    if ds.SamplesPerPixel > 1 and syntax in LOSSY:
        np.testing.assert_allclose(ours, ref, atol=5)
    else:
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.skipif(HAS_LIBJPEG, reason='pylibjpeg-libjpeg is installed')
@pytest.mark.parametrize('name', ['JPGExtended.dcm', 'JPEG-lossy.dcm'])
def test_12bit_jpeg_extended_names_the_gpl_extra(name):
    with pytest.raises(DicomReadError) as info:
        read_dicom(CORPUS / name)
    text = str(info.value)
    assert name in text and 'pylibjpeg-libjpeg' in text
    assert "pip install 'perception-toolkit[gpl]'" in text


@pytest.mark.parametrize('name, words', [
    ('test-SR.dcm', 'not an image'), ('rtstruct.dcm', 'not an image'),
    ('rtplan.dcm', 'not an image'), ('waveform_ecg.dcm', 'not an image'),
    ('dicomdirtests/DICOMDIR', 'DICOMDIR'), ('MR_truncated.dcm', 'truncated'),
    ('README.txt', 'not a DICOM file'), ('zipMR.gz', 'not a DICOM file'),
    ('badVR.dcm', 'NumberOfFrames'),
    # the delimiter inside the fragments misframes the codestream
    ('JPEG2000-embedded-sequence-delimiter.dcm', 'JPEG 2000 codestream'),
])
def test_unreadable_files_say_why(name, words):
    with pytest.raises(DicomReadError) as info:
        read_dicom(CORPUS / name)
    assert str(CORPUS / name) in str(info.value) and words in str(info.value)


def test_missing_file_is_a_dicom_read_error(tmp_path):
    with pytest.raises(DicomReadError, match='no such file'):
        read_dicom(tmp_path / 'nope.dcm')


def test_monochrome1_is_not_inverted():
    path = CORPUS / 'dicomdirtests/77654033/CR1/6154'
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == 'MONOCHROME1'
    # modality transform only: no 'max - value' display inversion
    expected = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    np.testing.assert_array_equal(read_dicom(path), expected)


def test_colour_is_rgb_ybr_converted_and_palette_applied():
    ybr = read_dicom(CORPUS / 'SC_ybr_full_422_uncompressed.dcm')
    rgb = read_dicom(CORPUS / 'SC_rgb_small_odd.dcm')
    palette = read_dicom(CORPUS / 'examples_palette.dcm')
    assert ybr.shape == (100, 100, 3) and rgb.shape == (3, 3, 3)
    assert palette.shape == (350, 800, 3)
    # the YBR test image is red/green/blue/... bands: top band is red
    r, g, b = ybr[5, 50]
    assert r > 200 and g < 30 and b < 30


def test_broken_but_readable_is_recorded_or_warned():
    path = CORPUS / 'MR_small_padded.dcm'
    problems: list[str] = []
    read_dicom(path, problems=problems)
    assert problems and str(path) in problems[0] and 'padding' in problems[0]
    with pytest.warns(DicomProblemWarning, match='MR_small_padded'):
        read_dicom(path)


def _enhanced_ct(tmp_path, dicom_factory, frames=3, shape=(4, 5)):
    make_dataset, save = dicom_factory.make_dataset, dicom_factory.save
    stored = np.arange(frames * shape[0] * shape[1], dtype=np.int16
                       ).reshape((frames, ) + shape) * 3 - 20
    ds = make_dataset(stored[0], sop_class='1.2.840.10008.5.1.4.1.1.2.1',
                      slope=None, position=None, orientation=None,
                      pixel_spacing=None)
    ds.NumberOfFrames = frames
    ds.PixelData = stored.tobytes()
    shared = Dataset()
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal
    measures.PixelSpacing, measures.SliceThickness = [0.8, 0.6], 5
    shared.PlaneOrientationSequence = [orient]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for k in range(frames):
        item, pos, pvt = Dataset(), Dataset(), Dataset()
        # frames stored in reverse order along the normal (0, -1, 0)... y
        pos.ImagePositionPatient = [-5.0, 10.0 - 1.5 * (frames - 1 - k), 7.0]
        pvt.RescaleSlope, pvt.RescaleIntercept = k + 1, -100 * k
        pvt.RescaleType = 'HU'
        item.PlanePositionSequence = [pos]
        item.PixelValueTransformationSequence = [pvt]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    # a top-level rescale that must lose against the functional groups
    ds.RescaleSlope, ds.RescaleIntercept = 7, 7
    path = save(ds, tmp_path / 'enhanced.dcm')
    expected = np.stack([stored[k].astype(np.float64) * (k + 1) - 100 * k
                         for k in range(frames)]).astype(np.float32)
    return path, expected


def test_enhanced_ct_per_frame_rescale(tmp_path, dicom_factory):
    path, expected = _enhanced_ct(tmp_path, dicom_factory)
    out = read_dicom(path)
    assert out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, expected)


def test_shared_functional_group_rescale_beats_top_level(tmp_path, dicom_factory):
    make_dataset, save = dicom_factory.make_dataset, dicom_factory.save
    stored = np.arange(12, dtype=np.int16).reshape(2, 2, 3)
    ds = make_dataset(stored[0], slope=5, intercept=5)
    ds.NumberOfFrames, ds.PixelData = 2, stored.tobytes()
    shared, pvt = Dataset(), Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept = 0.5, -3
    shared.PixelValueTransformationSequence = [pvt]
    ds.SharedFunctionalGroupsSequence = [shared]
    out = read_dicom(save(ds, tmp_path / 'shared.dcm'))
    np.testing.assert_array_equal(out, stored * 0.5 - 3)


def test_modality_lut_sequence(tmp_path, dicom_factory):
    make_dataset, save = dicom_factory.make_dataset, dicom_factory.save
    stored = np.array([[0, 1, 2], [3, 300, 5]], np.uint16)
    ds = make_dataset(stored, slope=None)
    item = Dataset()
    # 4 entries, first mapped value 1, 16 bits (VRs are ambiguous: set them)
    item.add_new(0x00283002, 'US', [4, 1, 16])
    item.add_new(0x00283006, 'US', [100, 200, 300, 400])
    item.ModalityLUTType = 'HU'
    ds.ModalityLUTSequence = [item]
    out = read_dicom(save(ds, tmp_path / 'lut.dcm'))
    # below the first mapped value -> first entry, above the end -> last
    np.testing.assert_array_equal(out, [[100, 100, 200], [300, 400, 400]])


def test_rt_dose_multiframe_scaled(tmp_path, dicom_factory):
    make_dataset, save = dicom_factory.make_dataset, dicom_factory.save
    stored = np.arange(2 * 3 * 4, dtype=np.uint32).reshape(2, 3, 4) * 1000
    ds = make_dataset(stored[0], sop_class='1.2.840.10008.5.1.4.1.1.481.2',
                      modality='RTDOSE', slope=None)
    ds.NumberOfFrames, ds.PixelData = 2, stored.tobytes()
    ds.DoseGridScaling, ds.DoseUnits = 2.5e-5, 'GY'
    ds.GridFrameOffsetVector = [0, 3]
    ds.FrameIncrementPointer = 0x3004000C
    out = read_dicom(save(ds, tmp_path / 'dose.dcm'))
    np.testing.assert_allclose(out, stored * 2.5e-5, rtol=1e-6)


def test_big_endian_gives_native_byte_order(tmp_path, dicom_factory):
    make_dataset, save = dicom_factory.make_dataset, dicom_factory.save
    stored = np.array([[-1000, 0], [1, 2000]], np.int16)
    path = save(make_dataset(stored, syntax='big', slope=2.0, intercept=-5),
                tmp_path / 'big.dcm')
    out = read_dicom(path)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, stored * 2.0 - 5)
    assert read_dicom(CORPUS / 'MR_small_bigendian.dcm').dtype.isnative


def test_file_without_meta_infers_transfer_syntax(tmp_path, dicom_factory):
    make_dataset = dicom_factory.make_dataset
    stored = np.array([[1, 2, 3], [4, 5, 6]], np.int16)
    ds = make_dataset(stored, syntax='implicit')
    del ds.file_meta
    path = tmp_path / 'nometa.dcm'
    pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    assert open(path, 'rb').read(132)[128:132] != b'DICM'
    np.testing.assert_array_equal(read_dicom(path), stored - 1024.0)


def test_junk_that_parses_is_rejected(tmp_path):
    path = tmp_path / 'junk.dcm'
    path.write_bytes(os.urandom(4096))
    with pytest.raises(DicomReadError, match='not a DICOM file'):
        read_dicom(path)


def test_image_without_pixel_data(tmp_path, dicom_factory):
    make_dataset, save = dicom_factory.make_dataset, dicom_factory.save
    ds = make_dataset(np.zeros((2, 2), np.int16))
    del ds.PixelData
    # indistinguishable from a file cut before its pixels: say both
    with pytest.raises(DicomReadError, match='no Pixel Data .* truncated'):
        read_dicom(save(ds, tmp_path / 'nopix.dcm'))
    ds = make_dataset(np.zeros((2, 2), np.int16))
    del ds.Rows
    with pytest.raises(DicomReadError, match='Rows'):
        read_dicom(save(ds, tmp_path / 'norows.dcm'))


def test_uid_generation_does_not_touch_the_network():
    # guard for the fixtures: generate_uid is local
    assert generate_uid().startswith('1.2.826.0.1.3680043')


def test_warning_capture_is_per_thread():
    import threading

    from perception_medical.dicom.reading import captured_warnings
    started, release, sink = threading.Event(), threading.Event(), []

    def hold():
        with captured_warnings(sink):
            warnings.warn('inside the reader thread')
            started.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    started.wait(5)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            warnings.warn('another thread')
    finally:
        release.set()
        thread.join()
    assert sink == ['inside the reader thread']
    assert [str(w.message) for w in seen] == ['another thread']
