"""DICOM Segmentation (SEG) objects read back onto the grid of their source
series: :func:`read_seg` returns a label volume (z, y, x) whose slice k lies
on slice k of the series as :func:`~perception_medical.load_series` (or the
slice datasets' index) stacks it, whatever the order of the files or of the
SEG's frames.

Each frame is placed by the source instance it references
(``DerivationImageSequence`` > ``SourceImageSequence`` >
``ReferencedSOPInstanceUID``) and by its plane position
(``PlanePositionSequence`` > ``ImagePositionPatient``, which must fall on a
slice of the series: on its plane and on its pixel grid); when a frame has
both, they must agree. The SEG must reference the series, lie in its plane
(``ImageOrientationPatient``) with its pixel spacing and size. Anything else
is refused with :class:`SegAlignmentError`, naming the file, the field and
why: a label volume on the wrong slices is worse than none.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from perception.errors import UserError

#: a frame is on the series' grid when its position is within this many
#: voxels (slice spacing along the normal, pixel spacing in plane) of a voxel
TOLERANCE_VOXELS = 0.05
#: largest angle (radians) between the SEG's and the series' axes
TOLERANCE_RADIANS = 1e-3


class SegAlignmentError(UserError, ValueError):
    """A SEG does not lie on its series' grid (or does not reference it)."""


@dataclass
class SeriesGrid:
    """Where a series' slices are: what :func:`read_seg` aligns to.

    Attributes:
        series_uid: SeriesInstanceUID.
        shape: (z, y, x) voxels.
        affine: 4x4, homogeneous index (z, y, x, 1) -> LPS (x, y, z, 1) mm.
        sop_digests: per slice, :func:`~perception_medical.datasets.series_index.sop_digest`
            of its SOPInstanceUID (empty: place frames by position alone).
    """

    series_uid: str
    shape: tuple[int, int, int]
    affine: np.ndarray
    sop_digests: Sequence[str] = ()

    @classmethod
    def from_volume(cls, volume) -> SeriesGrid:
        """The grid of a loaded :class:`~perception_medical.Volume` (its
        files' SOPInstanceUIDs read from the headers; a multi-frame or
        resampled volume is matched by plane position alone)."""
        import pydicom

        from perception_medical.datasets.series_index import sop_digest
        digests = []
        for source in volume.files:
            if source.endswith(']'):  # 'path [frame n]': one multi-frame file
                digests = []
                break
            ds = pydicom.dcmread(source, stop_before_pixels=True,
                                 specific_tags=['SOPInstanceUID'])
            digests.append(sop_digest(str(ds.SOPInstanceUID)))
        if len(digests) != volume.array.shape[0]:  # resampled: no 1:1 files
            digests = []
        return cls(str(volume.meta['series_uid']), tuple(volume.array.shape[:3]),
                   np.asarray(volume.affine, np.float64), digests)

    @classmethod
    def from_index_entry(cls, entry: dict) -> SeriesGrid:
        """The grid of a series of the slice datasets' index."""
        return cls(entry['series_uid'], tuple(entry['shape']),
                   np.asarray(entry['affine'], np.float64),
                   list(entry.get('sop_digests') or ()))


@dataclass
class SegLabels:
    """A SEG on its series' grid.

    Attributes:
        labels: (z, y, x) uint8 (uint16 past 255 segments); 0 background,
            value n: segment n.
        classes: name of each value (0: 'background', then the segments'
            SegmentLabel in segment-number order).
        covered: (z,) bool, slices that at least one frame lies on (a SEG
            may leave out empty frames, so an uncovered slice is background
            too).
    """

    labels: np.ndarray
    classes: list[str]
    covered: np.ndarray


def _item(ds, *keywords):
    """ds.K1[0].K2[0]...; None where any is missing."""
    for keyword in keywords:
        seq = ds.get(keyword) if ds is not None else None
        if not seq:
            return None
        ds = seq[0]
    return ds


def _frame_groups(ds, i, shared, keyword):
    per_frame = ds.get('PerFrameFunctionalGroupsSequence')
    item = _item(per_frame[i], keyword) if per_frame else None
    return item if item is not None else _item(shared, keyword)


def _check_plane(path: str, ds, grid: SeriesGrid) -> None:
    shared = _item(ds, 'SharedFunctionalGroupsSequence')
    frame0 = (ds.get('PerFrameFunctionalGroupsSequence') or [None])[0]
    orient = _item(shared, 'PlaneOrientationSequence') or \
        _item(frame0, 'PlaneOrientationSequence')
    if orient is None or 'ImageOrientationPatient' not in orient:
        raise SegAlignmentError(f'{path}: ImageOrientationPatient (Plane '
                                'Orientation Sequence) is missing; it cannot be '
                                'aligned to a series')
    iop = np.asarray([float(v) for v in orient.ImageOrientationPatient])
    col_dir = grid.affine[:3, 2] / np.linalg.norm(grid.affine[:3, 2])
    row_dir = grid.affine[:3, 1] / np.linalg.norm(grid.affine[:3, 1])
    angle = max(np.arccos(np.clip(abs(iop[:3] @ col_dir), -1, 1)),
                np.arccos(np.clip(abs(iop[3:] @ row_dir), -1, 1)))
    if angle > TOLERANCE_RADIANS or iop[:3] @ col_dir < 0 or iop[3:] @ row_dir < 0:
        raise SegAlignmentError(
            f'{path}: ImageOrientationPatient {iop.round(4).tolist()} is not '
            f"the plane of series {grid.series_uid} "
            f'({np.r_[col_dir, row_dir].round(4).tolist()}); resample the '
            'SEG onto the series first')
    if (int(ds.Rows), int(ds.Columns)) != tuple(grid.shape[1:]):
        raise SegAlignmentError(
            f'{path}: Rows, Columns ({ds.Rows}, {ds.Columns}) differ from the '
            f'series slices {tuple(grid.shape[1:])}; the SEG is on another grid')
    measures = _item(shared, 'PixelMeasuresSequence') or \
        _item(frame0, 'PixelMeasuresSequence')
    if measures is not None and 'PixelSpacing' in measures:
        spacing = np.asarray([float(v) for v in measures.PixelSpacing])
        want = np.linalg.norm(grid.affine[:3, 1:3], axis=0)
        if np.abs(spacing - want).max() > TOLERANCE_VOXELS * want.min():
            raise SegAlignmentError(
                f'{path}: PixelSpacing {spacing.tolist()} differs from the '
                f"series' {want.round(6).tolist()} mm; the SEG is on another grid")


def _references_series(path: str, ds, grid: SeriesGrid) -> None:
    referenced = [str(item.get('SeriesInstanceUID', ''))
                  for item in ds.get('ReferencedSeriesSequence') or []]
    if grid.series_uid not in referenced:
        raise SegAlignmentError(
            f'{path}: ReferencedSeriesSequence names series '
            f"{', '.join(referenced) or '(none)'}, not {grid.series_uid}; "
            'pass the series this SEG was made on')


def _slice_of_frame(path: str, i: int, fg_source, position, grid: SeriesGrid,
                    where: dict[str, int]) -> int:
    """The series slice that frame ``i`` lies on."""
    from perception_medical.datasets.series_index import sop_digest
    by_uid = by_pos = None
    uid = str(fg_source.ReferencedSOPInstanceUID) if fg_source is not None \
        and 'ReferencedSOPInstanceUID' in fg_source else None
    if uid is not None and where:
        by_uid = where.get(sop_digest(uid))
        if by_uid is None:
            raise SegAlignmentError(
                f'{path}: frame {i + 1}: ReferencedSOPInstanceUID {uid} is no '
                f'instance of series {grid.series_uid}; pass the series this '
                'SEG was made on')
    if position is not None:
        xyz = np.asarray([float(v) for v in position], np.float64)
        zyx = np.linalg.solve(grid.affine[:3, :3], xyz - grid.affine[:3, 3])
        k = int(round(zyx[0]))
        off = np.abs(zyx - [k, 0, 0])
        if off.max() > TOLERANCE_VOXELS or not 0 <= k < grid.shape[0]:
            raise SegAlignmentError(
                f'{path}: frame {i + 1}: ImagePositionPatient '
                f'{xyz.round(4).tolist()} is off the grid of series '
                f'{grid.series_uid} (at voxel (z, y, x) '
                f'{zyx.round(3).tolist()}, want slice 0..{grid.shape[0] - 1} '
                'and y = x = 0); resample the SEG onto the series first')
        by_pos = k
    if by_uid is not None and by_pos is not None and by_uid != by_pos:
        raise SegAlignmentError(
            f'{path}: frame {i + 1}: ReferencedSOPInstanceUID is slice '
            f'{by_uid} of the series but ImagePositionPatient is on slice '
            f'{by_pos}; the SEG contradicts itself')
    found = by_uid if by_uid is not None else by_pos
    if found is None:
        raise SegAlignmentError(
            f'{path}: frame {i + 1} has neither ImagePositionPatient (Plane '
            'Position Sequence) nor a ReferencedSOPInstanceUID of the series '
            '(Derivation Image Sequence); it cannot be placed')
    return found


def read_seg(path: str | os.PathLike, series) -> SegLabels:
    """Read a BINARY or FRACTIONAL DICOM SEG onto its series' grid.

    Args:
        path: the SEG file.
        series: a :class:`~perception_medical.Volume` (from ``load_series``)
            or a :class:`SeriesGrid`.

    Returns:
        :class:`SegLabels`; segments must not overlap (a label volume holds
        one class per voxel).

    Raises:
        SegAlignmentError: the SEG references another series, lies in
            another plane or grid, has frames off the series' slices, or
            overlapping segments.
    """
    import pydicom
    path = os.fspath(path)
    grid = series if isinstance(series, SeriesGrid) else \
        SeriesGrid.from_volume(series)
    ds = pydicom.dcmread(path)
    if str(ds.get('Modality', '')) != 'SEG':
        raise SegAlignmentError(f"{path}: Modality is {ds.get('Modality')!r}, "
                                "not 'SEG'; pass a DICOM Segmentation file")
    kind = str(ds.get('SegmentationType', ''))
    if kind not in ('BINARY', 'FRACTIONAL'):
        raise SegAlignmentError(f'{path}: SegmentationType {kind!r} is not '
                                'read (BINARY or FRACTIONAL)')
    _references_series(path, ds, grid)
    _check_plane(path, ds, grid)
    segments = {int(s.SegmentNumber): str(s.get('SegmentLabel', ''))
                for s in ds.SegmentSequence}
    numbers = sorted(segments)
    if numbers != list(range(1, len(numbers) + 1)):
        raise SegAlignmentError(f'{path}: SegmentNumber values {numbers} are '
                                'not 1..N; renumber the segments')
    pixels = ds.pixel_array.reshape(int(ds.get('NumberOfFrames', 1)),
                                    int(ds.Rows), int(ds.Columns))
    if kind == 'FRACTIONAL':
        pixels = pixels >= float(ds.MaximumFractionalValue) / 2
    dtype = np.uint8 if len(numbers) < 256 else np.uint16
    labels = np.zeros(grid.shape, dtype)
    covered = np.zeros(grid.shape[0], bool)
    where = {d: k for k, d in enumerate(grid.sop_digests)}
    shared = _item(ds, 'SharedFunctionalGroupsSequence')
    for i in range(len(pixels)):
        segment = _frame_groups(ds, i, shared, 'SegmentIdentificationSequence')
        number = int(segment.ReferencedSegmentNumber) if segment else 0
        if number not in segments:
            raise SegAlignmentError(
                f'{path}: frame {i + 1}: ReferencedSegmentNumber {number} is '
                'not in SegmentSequence')
        plane = _frame_groups(ds, i, shared, 'PlanePositionSequence')
        derivation = _frame_groups(ds, i, shared, 'DerivationImageSequence')
        source = _item(derivation, 'SourceImageSequence')
        k = _slice_of_frame(path, i, source, plane.get('ImagePositionPatient')
                            if plane is not None else None, grid, where)
        mask = pixels[i].astype(bool)
        clash = mask & (labels[k] != 0) & (labels[k] != number)
        if clash.any():
            other = int(labels[k][clash][0])
            raise SegAlignmentError(
                f'{path}: segments {other} ({segments[other]}) and {number} '
                f'({segments[number]}) overlap on slice {k} '
                f'({int(clash.sum())} pixels); a label volume needs disjoint '
                'segments')
        labels[k][mask] = number
        covered[k] = True
    return SegLabels(labels, ['background'] + [segments[n] for n in numbers],
                     covered)
