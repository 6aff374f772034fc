"""Shared fixtures for the medical plugin: pydicom's own test files and a
writer of synthetic DICOM series (real files written with pydicom)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

pydicom = pytest.importorskip('pydicom')

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

CT = '1.2.840.10008.5.1.4.1.1.2'
SYNTAX = {'explicit': '1.2.840.10008.1.2.1', 'implicit': '1.2.840.10008.1.2',
          'big': '1.2.840.10008.1.2.2'}


@pytest.fixture(scope='session')
def pydicom_test_files() -> Path:
    """pydicom's bundled test files (listed directly: get_testdata_files
    with a pattern would go to the network)."""
    path = Path(pydicom.__file__).parent / 'data' / 'test_files'
    if not path.is_dir():
        pytest.skip(f'pydicom test files not installed at {path}')
    return path


@pytest.fixture(scope='session')
def dicomdir_tests(pydicom_test_files) -> Path:
    return pydicom_test_files / 'dicomdirtests'


def make_dataset(stored: np.ndarray, *, sop_class: str = CT,
                 modality: str = 'CT', series_uid: str | None = None,
                 frame_of_reference: str | None = None,
                 position=(0.0, 0.0, 0.0),
                 orientation=(1, 0, 0, 0, 1, 0),
                 pixel_spacing=(0.5, 0.75), slope=1.0, intercept=-1024.0,
                 bits_stored: int | None = None, syntax: str = 'explicit',
                 image_type=('ORIGINAL', 'PRIMARY', 'AXIAL'),
                 **extra) -> Dataset:
    """A single-frame grayscale image dataset with file meta."""
    stored = np.asarray(stored)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = SYNTAX[syntax]
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
    ds.StudyInstanceUID = extra.pop('study_uid', None) or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = frame_of_reference or generate_uid()
    ds.Modality = modality
    # what a DICOMDIR record needs (pydicom.fileset)
    ds.StudyDate, ds.StudyTime, ds.StudyID = '20200101', '120000', '1'
    ds.SeriesNumber = 1
    ds.ImageType = list(image_type)
    ds.PatientName, ds.PatientID = 'Doe^Jane', 'PID-12345'
    ds.PatientBirthDate, ds.InstitutionName = '19700101', 'General Hospital'
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if pixel_spacing is not None:
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.SliceThickness = 99.0   # deliberately wrong: spacing must not use it
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    bits = stored.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored = bits, bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(stored.dtype.kind == 'i')
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    order = '>' if syntax == 'big' else '<'
    ds.PixelData = stored.astype(stored.dtype.newbyteorder(order)).tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def save(ds: Dataset, path: str | os.PathLike) -> str:
    syntax = str(ds.file_meta.TransferSyntaxUID)
    ds.save_as(path, implicit_vr=syntax == SYNTAX['implicit'],
               little_endian=syntax != SYNTAX['big'], enforce_file_format=True)
    return str(path)


@pytest.fixture
def write_series(tmp_path) -> Callable[..., dict]:
    """Factory: write a series and return what it should load to.

    ``write_series(n=6, shape=(8, 10), spacing=2.0, orientation=IOP,
    origin=(x, y, z), step=None, positions=None, folder=None, shuffle=True,
    series_uid=None, prefix='slice', **make_dataset kwargs)`` -> dict(paths, folder,
    series_uid, positions (n, 3) in slice order, stored (n, r, c), hu,
    orientation, spacing).
    """
    rng = np.random.default_rng(0)

    def write(n: int = 6, shape=(8, 10), spacing: float = 2.0,
              orientation=(1, 0, 0, 0, 1, 0), origin=(-10.0, 20.0, 30.0),
              step=None, positions=None, folder=None, shuffle: bool = True,
              series_uid: str | None = None, dtype=np.int16,
              frame_of_reference: str | None = None, prefix: str = 'slice',
              **kwargs) -> dict:
        folder = Path(folder or tmp_path / 'series')
        folder.mkdir(parents=True, exist_ok=True)
        orientation = np.asarray(orientation, float)
        normal = np.cross(orientation[:3], orientation[3:])
        if positions is None:
            step_vec = normal * spacing if step is None else np.asarray(step)
            positions = np.asarray(origin) + np.arange(n)[:, None] * step_vec
        positions = np.asarray(positions, float)
        series_uid = series_uid or generate_uid()
        frame_of_reference = frame_of_reference or generate_uid()
        info = np.iinfo(dtype)
        stored = rng.integers(max(info.min, -2000), min(info.max, 3000),
                              (len(positions), ) + tuple(shape)).astype(dtype)
        names = rng.permutation(len(positions)) if shuffle else \
            np.arange(len(positions))
        paths = []
        for k, pos in enumerate(positions):
            ds = make_dataset(stored[k], series_uid=series_uid,
                              frame_of_reference=frame_of_reference,
                              position=pos, orientation=orientation,
                              InstanceNumber=k + 1, **kwargs)
            paths.append(save(ds, folder / f'{prefix}_{names[k]:04d}.dcm'))
        slope = kwargs.get('slope', 1.0)
        intercept = kwargs.get('intercept', -1024.0)
        hu = (stored.astype(np.float64) * slope + intercept).astype(np.float32)
        return dict(paths=paths, folder=str(folder), series_uid=series_uid,
                    positions=positions, stored=stored, hu=hu,
                    orientation=orientation,
                    pixel_spacing=kwargs.get('pixel_spacing', (0.5, 0.75)))

    return write


@pytest.fixture(scope='session')
def dicom_factory():
    """``make_dataset(stored, **attrs)`` and ``save(ds, path)`` (test modules
    cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace
    return SimpleNamespace(make_dataset=make_dataset, save=save)
