"""Worker of the DICOM fuzz test (test_fuzz.py): runs as a script, reads
mutation jobs from a JSON file, starting at job ``argv[2]``, and for each
prints ``START i`` before and ``END i outcome seconds`` after reading the
mutated file with ``read_dicom`` in this process (``isolate=False``: the
header checks and decoder order are what is tested), then indexing it with
``scan_headers`` (which must give a header or a reason, never raise). The parent kills it
after 10 s without an END and restarts it after the job that killed it.
The address space is capped at ``argv[3]`` bytes (``RLIMIT_AS``).
"""
from __future__ import annotations

import io
import json
import os
import random
import resource
import sys
import tempfile
import time

import numpy as np
import pydicom
from pydicom import config
from pydicom.dataset import Dataset

from perception_medical.dicom.header_scan import scan_headers
from perception_medical.dicom.reading import DicomReadError, read_dicom

ABSURD = {
    'Rows': [0, 1, 3, 255, 32768, 65535],
    'Columns': [0, 1, 7, 4097, 65535],
    'BitsAllocated': [0, 1, 7, 8, 12, 16, 24, 32, 40, 64, 65535],
    'BitsStored': [0, 1, 6, 8, 12, 16, 17, 33, 64, 65535],
    'HighBit': [0, 7, 15, 63, 65535],
    'NumberOfFrames': [0, 2, 3, 7, 1000, 65536, 10**9],
    'SamplesPerPixel': [0, 2, 3, 4, 255],
    'PixelRepresentation': [0, 1, 2, 65535],
    'PlanarConfiguration': [0, 1, 2],
    'PhotometricInterpretation': ['RGB', 'YBR_FULL_422', 'PALETTE COLOR', 'MONOCHROME1',
                                  'YBR_ICT', 'XYZ'],
}
LUT_DESCRIPTORS = [[0, 0, 16], [4096, 0, 40], [10, 0, 16], [65535, 65535, 8], [2, 0, 16],
                   [1, 0, 8], [256, 0, 0]]


def pixel_offset(data: bytes) -> int:
    at = max(data.rfind(b'\xe0\x7f\x10\x00'), data.rfind(b'\x7f\xe0\x00\x10'))
    return at if at > 132 else len(data)


def _flip(data: bytearray, lo: int, hi: int, rng: random.Random) -> None:
    if hi <= lo:
        return
    for _ in range(rng.randint(1, 16)):
        data[rng.randrange(lo, hi)] = rng.randrange(256)


def _rewrite(data: bytes, rng: random.Random, change) -> bytes | None:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        with config.disable_value_validation():
            change(ds, rng)
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=False)
        return out.getvalue()
    except Exception:   # the mutation itself cannot be written: skip it
        return None


def _absurd(ds: Dataset, rng: random.Random) -> None:
    for name in rng.sample(sorted(ABSURD), rng.randint(1, 3)):
        setattr(ds, name, rng.choice(ABSURD[name]))


def _broken_lut(ds: Dataset, rng: random.Random) -> None:
    descriptor = rng.choice(LUT_DESCRIPTORS)
    data = [rng.randrange(65536) for _ in range(rng.choice([0, 1, 2, 10, 300]))]
    if 'RedPaletteColorLookupTableDescriptor' in ds and rng.random() < 0.5:
        colour = rng.choice(['Red', 'Green', 'Blue'])
        ds.add_new(pydicom.datadict.tag_for_keyword(
            f'{colour}PaletteColorLookupTableDescriptor'), 'US', descriptor)
        if rng.random() < 0.5:
            ds.add_new(pydicom.datadict.tag_for_keyword(
                f'{colour}PaletteColorLookupTableData'), 'OW',
                np.asarray(data, np.uint16).tobytes())
        return
    item = Dataset()
    item.add_new(0x00283002, 'US', descriptor)
    item.add_new(0x00283006, 'US', data)
    item.ModalityLUTType = 'HU'
    ds.ModalityLUTSequence = [item]
    for name in ('RescaleSlope', 'RescaleIntercept'):
        if name in ds and rng.random() < 0.8:
            delattr(ds, name)


def mutate(data: bytes, kind: str, seed: int) -> bytes | None:
    rng = random.Random(seed)
    out = bytearray(data)
    pix = pixel_offset(data)
    if kind == 'truncate':
        return bytes(out[:rng.randrange(0, len(out))])
    if kind == 'flip_header':
        _flip(out, 0, pix, rng)
    elif kind == 'flip_pixels':
        _flip(out, pix, len(out), rng)
    elif kind == 'flip_anywhere':
        _flip(out, 0, len(out), rng)
    elif kind == 'zero_chunk':
        start = rng.randrange(len(out))
        size = rng.choice([2, 8, 64, 512, 4096])
        out[start:start + size] = bytes(len(out[start:start + size]))
    elif kind == 'absurd':
        return _rewrite(data, rng, _absurd)
    elif kind == 'broken_lut':
        return _rewrite(data, rng, _broken_lut)
    return bytes(out)


def main() -> None:
    jobs = json.loads(open(sys.argv[1]).read())
    start, limit = int(sys.argv[2]), int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cache: dict[str, bytes] = {}
    fd, tmp = tempfile.mkstemp(suffix='.dcm')
    os.close(fd)
    try:
        for i in range(start, len(jobs)):
            path, kind, seed = jobs[i]
            if path not in cache:
                cache[path] = open(path, 'rb').read()
            print(f'START {i}', flush=True)
            data = mutate(cache[path], kind, seed)
            if data is None:
                print(f'END {i} skipped 0', flush=True)
                continue
            with open(tmp, 'wb') as f:
                f.write(data)
            t0 = time.perf_counter()
            try:
                out = read_dicom(tmp, problems=[])
                outcome = 'array' if isinstance(out, np.ndarray) else 'other:not-an-array'
            except DicomReadError as exc:
                # a decoder that died in its worker process, caught
                outcome = 'caught' if 'crashed in the isolated worker' in str(exc) \
                    else 'error'
            except BaseException as exc:  # noqa: BLE001 - what the test looks for
                outcome = f'other:{type(exc).__name__}:{str(exc)[:150]}'.replace('\n', ' ')
            try:    # the series loader's header index: a header or a reason
                scan_headers([tmp], workers=1)
            except BaseException as exc:  # noqa: BLE001
                outcome = f'other:scan:{type(exc).__name__}:{str(exc)[:120]}'.replace('\n', ' ')
            print(f'END {i} {outcome.replace(" ", "_")} {time.perf_counter() - t0:.4f}',
                  flush=True)
    finally:
        os.unlink(tmp)


if __name__ == '__main__':
    main()
