"""``DicomSliceDataset``: unlabeled CT slices for masked pretraining."""
from __future__ import annotations

from typing import Sequence

from perception.registry import DATASETS

from .base import CTSliceBase, with_slice_loader


@DATASETS.register_module()
class DicomSliceDataset(CTSliceBase):
    """Unlabeled CT slices (2D) or stacks of adjacent slices (2.5D) from one
    or more folders of DICOM series, for masked-image pretraining.

    Each sample is ``img`` (H, W, num_slices) float32 in modality units (HU),
    with ``series_uid``, ``slice_index``, ``affine`` (index -> LPS of the
    source volume), ``img_path``, ``header_windows`` and ``photometric``.
    Window in the pipeline (``ApplyWindows``) or in the data preprocessor.

    Args:
        data_root: folder searched recursively for DICOM series (other
            files, e.g. CSV/JSON beside them, are skipped).
        series_dirs: several folders (relative to ``data_root`` or
            absolute); default: ``data_root`` itself.
        num_slices: 1 (2D) or an odd stack size (2.5D, slices as channels;
            the stack repeats the edge slice at the ends of a series).
        slice_stride: distance in slices between stacked neighbours.
        index_file: where the series index is cached (default under
            ``~/.cache/perception/dicom_index``); the key of its file
            digests, ``index.key``, is kept in the same folder.
        on_problem: :func:`load_series` policy for broken series.
        isolate: decode DICOM in worker processes (untrusted archives: a file
            whose decoder aborts or hangs is a bad sample, the run goes on).
        pipeline: transforms after loading.
    """

    def __init__(self, data_root: str = '', pipeline: Sequence = (),
                 series_dirs: Sequence[str] | None = None,
                 num_slices: int = 1, slice_stride: int = 1,
                 index_file: str | None = None, on_problem='error',
                 isolate: bool = False, **kwargs) -> None:
        self._setup(data_root, series_dirs, num_slices, slice_stride,
                    index_file, on_problem)
        super().__init__(data_root=data_root,
                         pipeline=with_slice_loader(pipeline, isolate), **kwargs)

    def load_data_list(self) -> list[dict]:
        data = []
        for entry in self._index()['series']:
            for k in range(entry['shape'][0]):
                data.append(self._slice_info(entry, k))
        return data
