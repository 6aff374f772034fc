"""The header index: the byte-level fast path agrees with pydicom's parse."""
from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')

from pydicom.dataset import Dataset  # noqa: E402

from perception_medical.dicom.fast_header import read_fast_header  # noqa: E402
from perception_medical.dicom.header_scan import SliceHeader, Unreadable, _scan_one, scan_headers  # noqa: E402

FIELDS = [f for f in SliceHeader.__dataclass_fields__ if f != 'notes']


def _same(a, b, where):
    assert type(a) is type(b), where
    if isinstance(a, Unreadable):
        return
    assert len(a) == len(b), where
    for ha, hb in zip(a, b):
        for name in FIELDS:
            va, vb = getattr(ha, name), getattr(hb, name)
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                np.testing.assert_array_equal(va, vb, err_msg=f'{where} {name}')
            else:
                assert va == vb, f'{where}: {name}: {va!r} != {vb!r}'


def test_fast_path_equals_pydicom_on_the_corpus(pydicom_test_files):
    used = 0
    for path in sorted(pydicom_test_files.rglob('*')):
        if not path.is_file():
            continue
        used += read_fast_header(str(path)) is not None
        _same(_scan_one(str(path)), _scan_one(str(path), fast=False),
              str(path))
    assert used > 20     # the fast path is really exercised


def test_fast_path_skips_sequences_and_matches(dicom_factory, tmp_path):
    ds = dicom_factory.make_dataset(np.arange(6, dtype=np.int16).reshape(2, 3),
                                    slope=0.5, intercept=3,
                                    AcquisitionNumber='04')
    inner, outer = Dataset(), Dataset()
    inner.CodeValue, inner.CodeMeaning = '123', 'nested'
    outer.ReferencedSOPInstanceUID = '1.2.3'
    outer.ConceptNameCodeSequence = [inner]
    ds.ReferencedImageSequence = [outer, outer]
    ds.add_new(0x00091010, 'SQ', [outer])      # private sequence
    for syntax in ('explicit', 'implicit'):
        ds.file_meta.TransferSyntaxUID = {
            'explicit': '1.2.840.10008.1.2.1',
            'implicit': '1.2.840.10008.1.2'}[syntax]
        path = dicom_factory.save(ds, tmp_path / f'{syntax}.dcm')
        assert read_fast_header(path) is not None
        fast, slow = _scan_one(path), _scan_one(path, fast=False)
        _same(fast, slow, path)
        assert fast[0].acquisition == '4' and fast[0].rescale == (0.5, 3.0)
        assert fast[0].pixel_offset is not None


def test_scan_headers_in_threads_keeps_order_and_counts(write_series,
                                                        tmp_path):
    s = write_series(n=20)
    (tmp_path / 'series' / 'x.txt').write_text('hello')
    files = sorted(str(p) for p in (tmp_path / 'series').iterdir())
    headers, bad = scan_headers(files, workers=4)
    assert len(headers) == 20 and len(bad) == 1
    assert [h.path for h in headers] == [f for f in files
                                         if f.endswith('.dcm')]
    assert bad[0].path.endswith('x.txt')
    assert sorted(h.path for h in headers) == sorted(s['paths'])
