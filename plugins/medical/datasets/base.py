"""What the CT slice datasets share: reading a slice (or a 2.5D stack of
adjacent slices) into ``img``, the ``LoadCTSlices`` transform that does it
first in their pipelines, and their base class :class:`CTSliceBase` (roots,
series index, the sample of one slice)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from perception.data import BadSampleError, BaseTransform, PerceptionDataset
from perception.registry import TRANSFORMS

# the path arguments of these datasets are private (config redaction)
from perception_medical.deid.private_args import PATH_ARGS

from .series_index import SeriesIndex, load_series_index


def read_slices(paths: Sequence[tuple[str, int]], isolate: bool = False) -> np.ndarray:
    """(H, W, C) float32 modality values of the given (file, frame) slices
    (frame -1: single-frame file), each read by
    :func:`~perception_medical.dicom.reading.read_slice` (the reader the
    ``dicom`` source uses too), or slice ``frame`` of a MetaImage volume
    (``.mhd``/``.mha``: :func:`~perception_medical.dicom.metaimage.read_metaimage_slice`);
    errors as :class:`BadSampleError`. ``isolate``: decode DICOM in a worker
    process (untrusted archives: a decoder crash is a bad sample)."""
    from perception_medical.dicom.metaimage import (
        MetaImageError,
        is_metaimage,
        read_metaimage_slice,
    )
    from perception_medical.dicom.reading import DicomReadError, read_slice
    out = []
    for path, frame in paths:
        try:
            out.append(read_metaimage_slice(path, frame) if is_metaimage(path)
                       else read_slice(path, frame, problems=[], isolate=isolate))
        except (DicomReadError, MetaImageError) as exc:
            raise BadSampleError(str(exc)) from exc
    shapes = {p.shape for p in out}
    if len(shapes) > 1:
        raise BadSampleError(f'{paths[0][0]}: adjacent slices differ in size '
                             f'{sorted(shapes)}')
    return np.stack(out, axis=-1)


def neighbours(k: int, n: int, num_slices: int, stride: int) -> list[int]:
    """Indices of a 2.5D stack centred on slice ``k`` (edges repeated)."""
    half = num_slices // 2
    return [min(max(k + stride * j, 0), n - 1) for j in range(-half, half + 1)]


def split_patients(patients: Sequence[str], val_fraction: float,
                   seed: int) -> dict[str, set]:
    """Patient keys of each split, 'train', 'val' and 'all' (seeded shuffle
    of the sorted keys; with two or more patients each split has one)."""
    keys = sorted(set(patients))
    order = np.random.default_rng(seed).permutation(len(keys))
    n_val = int(round(val_fraction * len(keys)))
    if len(keys) > 1:
        n_val = min(max(n_val, 1 if val_fraction > 0 else 0), len(keys) - 1)
    val = {keys[i] for i in order[:n_val]}
    return dict(val=val, train=set(keys) - val, all=set(keys))


@TRANSFORMS.register_module()
class LoadCTSlices(BaseTransform):
    """Read ``slice_paths`` into ``img`` (H, W, C) float32 modality values.
    The CT datasets put it first in their pipeline themselves; put
    ``dict(type='LoadCTSlices', isolate=True)`` first yourself to decode
    untrusted DICOM in worker processes (a file that crashes its decoder
    is a bad sample, and the run goes on)."""

    def __init__(self, isolate: bool = False) -> None:
        self.isolate = isolate

    def transform(self, results: dict) -> dict:
        img = read_slices(results['slice_paths'], isolate=self.isolate)
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results


def with_slice_loader(pipeline: Sequence, isolate: bool = False) -> list:
    """``pipeline`` with :class:`LoadCTSlices` first (added unless there;
    ``isolate``: it decodes in worker processes)."""
    pipeline = list(pipeline)
    first = pipeline[0] if pipeline else None
    if isinstance(first, LoadCTSlices) or (
            isinstance(first, dict) and first.get('type') == 'LoadCTSlices'):
        return pipeline
    return [LoadCTSlices(isolate=isolate)] + pipeline


class CTSliceBase(PerceptionDataset):
    """What the CT slice datasets share: their roots, the series index and
    the sample of one slice (or 2.5D stack), read by :class:`LoadCTSlices`.
    Every subclass's path arguments (:data:`PATH_ARGS`) are private: the
    privacy guard redacts them from what a run writes."""

    private_args = PATH_ARGS

    def _setup(self, data_root, series_dirs, num_slices, slice_stride,
               index_file, on_problem) -> None:
        if num_slices < 1 or num_slices % 2 == 0:
            raise ValueError(f'num_slices must be odd (1 for 2D, 3 or 5 for '
                             f'2.5D stacks), got {num_slices}')
        dirs = list(series_dirs or [''])
        self.roots = [d if os.path.isabs(d) else
                      os.path.join(data_root or '', d) for d in dirs]
        self.num_slices, self.slice_stride = num_slices, slice_stride
        self.index_file, self.on_problem = index_file, on_problem

    @property
    def slice_offsets(self) -> list[int]:
        """Which slices form a sample's channels, relative to its own (what
        :class:`~perception.data.PretrainedCfg` records with the weights)."""
        half = self.num_slices // 2
        return [self.slice_stride * j for j in range(-half, half + 1)]

    def _index(self) -> SeriesIndex:
        if not hasattr(self, '_index_cache'):
            self._index_cache = load_series_index(
                self.roots, self.index_file, self.on_problem)
        return self._index_cache

    def _slice_info(self, entry: dict, k: int) -> dict:
        n = entry['shape'][0]
        stack = neighbours(k, n, self.num_slices, self.slice_stride)
        paths = [self._index().file(entry, j) for j in stack]
        return dict(img_path=paths[len(paths) // 2][0], slice_paths=paths,
                    series_uid=entry['series_uid'], slice_index=k,
                    affine=np.asarray(entry['affine'], np.float32),
                    patient=entry['patient'],
                    header_windows=entry['header_windows'],
                    photometric=entry['photometric'],
                    scan_fields=dict(entry.get('scan_fields') or {}))
