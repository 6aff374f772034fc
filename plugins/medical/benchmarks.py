"""``perception benchmark dicom``: load_series against the code a user
would write (sequential dcmread, sort by position, apply_modality_lut,
np.stack) on an uncompressed CT series written with pydicom; and the CT
datasets' series index (headers only) against the index as it was built
before, loading every series' pixels once for its geometry."""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from perception.benchmarks import Benchmark, format_table, interleave
from perception.registry import BENCHMARKS
from perception.study_domains import StudyDomain, register_study_domain


def write_ct_series(folder: str, n_slices: int = 256, size: int = 512,
                    spacing: float = 1.25, seed: int = 0) -> list[str]:
    """Axial CT, int16 stored values, slope 1 / intercept -1024, file names
    in shuffled order (so sorting by name would be wrong)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
    rng = np.random.default_rng(seed)
    series, frame_ref, study = generate_uid(), generate_uid(), generate_uid()
    order = rng.permutation(n_slices)
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (0.4 * size) ** 2
    paths = []
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop = generate_uid()
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID, ds.Modality = frame_ref, 'CT'
        ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-160.0, -160.0, -100.0 + k * spacing]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.625, 0.625]
        ds.SliceThickness = spacing
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        pixels = np.where(disc, 1024 + 40, 24).astype(np.int16)
        pixels += rng.integers(-20, 20, (size, size), dtype=np.int16)
        ds.PixelData = pixels.tobytes()
        path = os.path.join(folder, f'IM{order[k]:05d}.dcm')
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def straightforward_load(folder: str) -> np.ndarray:
    """The baseline: what a user writes with pydicom alone."""
    import pydicom
    from pydicom.pixels import apply_modality_lut
    datasets = [pydicom.dcmread(os.path.join(folder, name))
                for name in sorted(os.listdir(folder))]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([apply_modality_lut(ds.pixel_array, ds)
                     for ds in datasets])


def full_read_index(folder: str) -> list[dict]:
    """The baseline of the index case: the series index as built before it
    became header-only (headers grouped by series, then every series loaded,
    pixels and all, through load_series just for its shape and affine)."""
    import pydicom

    from perception_medical.dicom.header_scan import list_dicom_files
    from perception_medical.dicom.series import load_series
    by_uid: dict[str, list[str]] = {}
    for path in list_dicom_files(folder):
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
            'SeriesInstanceUID', 'SOPInstanceUID', 'PatientID'])
        by_uid.setdefault(str(ds.SeriesInstanceUID), []).append(path)
    out = []
    for uid, files in sorted(by_uid.items()):
        vol = load_series(files, series_uid=uid, min_slices=1)
        out.append(dict(series_uid=uid, shape=list(vol.array.shape[:3]),
                        affine=np.asarray(vol.affine, float).tolist()))
    return out


def header_index(folder: str, key: bytes) -> list[dict]:
    """The index of the CT datasets, as they build it (no cache)."""
    from perception_medical.datasets.series_index import build_series_index
    return build_series_index([folder], key=key)['series']


@BENCHMARKS.register_module(name='dicom')
class DicomBenchmark(Benchmark):
    name = 'dicom'
    help = ('load_series vs sequential pydicom dcmread + apply_modality_lut '
            '+ np.stack on an uncompressed CT series; the CT datasets\' '
            'series index (headers only) vs the old full-read index')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--slices', type=int, default=256)
        parser.add_argument('--size', type=int, default=512)
        parser.add_argument('--repeats', type=int, default=5)
        parser.add_argument('--workers', type=int, default=None,
                            help='threads for load_series (default: auto)')

    def run(self, args: argparse.Namespace) -> int:
        from perception_medical.dicom.series import load_series
        with tempfile.TemporaryDirectory(prefix='bench_dicom_') as folder:
            write_ct_series(folder, args.slices, args.size)
            ours = load_series(folder, workers=args.workers).array
            ref = straightforward_load(folder)
            same = np.array_equal(ours, ref.astype(np.float32))
            print(f'{args.slices} slices {args.size}x{args.size} int16 '
                  f'uncompressed; {os.cpu_count()} CPU(s); identical arrays: '
                  f'{same}')
            if not same:
                print('MISMATCH between load_series and the baseline')
                return 1
            timings = interleave({
                'pydicom sequential (baseline)':
                    lambda: straightforward_load(folder),
                'perception_medical.load_series':
                    lambda: load_series(folder, workers=args.workers),
            }, repeats=args.repeats, warmup=1)
            key = b'benchmark-key-0123456789abcdef'
            old, new = full_read_index(folder), header_index(folder, key)
            same_index = [(e['series_uid'], e['shape']) for e in old] == \
                [(e['series_uid'], e['shape']) for e in new] and \
                np.allclose([e['affine'] for e in old],
                            [e['affine'] for e in new])
            index_timings = interleave({
                'index, full pixel read (baseline)':
                    lambda: full_read_index(folder),
                'index, headers only (DicomSliceDataset)':
                    lambda: header_index(folder, key),
            }, repeats=args.repeats, warmup=1)
        base = timings['pydicom sequential (baseline)'].best
        rows = [(name, t.best, t.median, args.slices / t.best, base / t.best)
                for name, t in timings.items()]
        print(format_table(('contestant', 'best s', 'median s',
                            'slices/s (best)', 'speed-up'), rows))
        print(f'\nseries index of the same series; same geometry: '
              f'{same_index}')
        if not same_index:
            print('MISMATCH between the header-only index and the baseline')
            return 1
        base = index_timings['index, full pixel read (baseline)'].best
        rows = [(name, t.best, t.median, args.slices / t.best, base / t.best)
                for name, t in index_timings.items()]
        print(format_table(('contestant', 'best s', 'median s',
                            'slices/s (best)', 'speed-up'), rows))
        return 0


register_study_domain(StudyDomain(
    name='medical',
    pretrain_config='configs/pretrain/'
                    'mae_vit-tiny-p16_1xb32-20min_synth-ct-lesions.py',
    scratch_config='configs/detection/'
                   'tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py',
    pretrained_config='configs/detection/'
                      'tal_vit-tiny-p16-mae_simplefpn_2000it-60min_synth-ct-lesions.py',
    fraction_kind='patients', fractions=(2, 4, 'all'), focus=4,
    metrics=(('froc/cpm', 'CPM'), ('froc/sens@2', 'sensitivity at 2 FPs/scan')),
    group_key='patient',
    data_commands=(
        ('synth-ct', 'data/ct_lesions/train', '--patients', '40',
         '--scanners', '3', '--seed', '1'),
        ('synth-ct', 'data/ct_lesions/test', '--patients', '12',
         '--scanners', '3', '--seed', '101')),
    data_check=('data/ct_lesions/train/annotations.csv',
                'data/ct_lesions/test/annotations.csv'),
    note=('Generated CT studies: 40 patients for training (32 train, 8 '
          'validation, split by patient; the label fractions are counts of '
          'the 32 training patients; MAE pretraining sees every slice without '
          'labels), 12 unseen patients for testing; LUNA16 FROC.')))
