"""Frames from a source -> the pipeline's input dict, with the same keys the
datasets produce, so training, inference and the demo share one path
(source -> adapter -> transforms -> data preprocessor -> model).

A sample of a camera frame has ``img`` (H, W, C), ``img_shape``,
``ori_shape``, ``img_path`` (when the frame came from a file), ``camera``,
``timestamp_ns``, ``frame_index`` and ``intrinsics`` (3x3 float32, when the
frame's meta has them), as ``CameraFeedDataset`` gives. A sample of a DICOM
slice (a frame whose meta has ``series_uid``) has ``img`` float32
(H, W, 1) in modality units, ``img_shape``, ``ori_shape``, ``img_path``,
``series_uid``, ``slice_index`` and ``affine`` (4x4 float32, index (z, y, x,
1) -> LPS mm of the source volume), as ``DicomSliceDataset`` gives; a slab
of adjacent slices (:func:`slab_to_sample`) stacks them as channels
(H, W, K) and records ``slice_offsets``. Pixels are not converted: the
frame's dtype is kept (a 16-bit raw frame stays uint16; the 16-bit rule of
:mod:`perception.data.image_io` applies where a source is asked for RGB).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from perception.sources import Frame

#: meta of a DICOM slice frame that travels into the sample
CT_KEYS = ('series_uid', 'slice_index', 'affine')


def _image(frame: Frame) -> np.ndarray:
    image = np.asarray(frame.image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f'frame {frame.index} of camera {frame.camera!r}: '
                         f'image has shape {image.shape}; expected (H, W) or '
                         '(H, W, C)')
    return np.ascontiguousarray(image)


def is_ct_frame(frame: Frame) -> bool:
    """Whether ``frame`` is a slice of a DICOM series (its meta has
    ``series_uid``, as the DICOM sources give)."""
    return 'series_uid' in frame.meta


def _meta(frame: Frame) -> dict[str, Any]:
    meta = frame.meta
    out: dict[str, Any] = {}
    path = meta.get('path') or meta.get('img_path')
    if path:
        out['img_path'] = str(path)
    if is_ct_frame(frame):
        out['series_uid'] = meta['series_uid']
        out['slice_index'] = int(meta.get('slice_index', frame.index))
        if meta.get('affine') is not None:
            out['affine'] = np.asarray(meta['affine'], np.float32)
        return out
    out['camera'] = str(frame.camera)
    out['timestamp_ns'] = int(frame.timestamp_ns)
    out['frame_index'] = int(frame.index)
    if meta.get('intrinsics') is not None:
        out['intrinsics'] = np.asarray(meta['intrinsics'], np.float32)
    return out


def frame_to_sample(frame: Frame, **extra: Any) -> dict[str, Any]:
    """One frame -> the results dict the pipeline (``Resize``,
    ``PackInputs``, ...) takes, as a dataset would give it.

    Args:
        frame: a camera frame (RGB uint8 (H, W, 3), or a raw 16-bit
            (H, W)) or a DICOM slice (float32 (H, W), meta ``series_uid``,
            ``slice_index``, ``affine``).
        **extra: more fields for the sample (e.g. ``sample_idx``).

    Returns:
        dict with ``img`` (H, W, C) (dtype kept), ``img_shape``,
        ``ori_shape`` and the meta keys of the module docstring.
    """
    image = _image(frame)
    sample = dict(img=image, img_shape=image.shape[:2],
                  ori_shape=image.shape[:2])
    sample.update(_meta(frame))
    sample.update(extra)
    return sample


def slab_frames(frames: Sequence[Frame], centre: int,
                offsets: Sequence[int] = (-1, 0, 1)) -> list[Frame]:
    """The frames at ``centre + offset`` of a series' frames in slice
    order, the edge slice repeated past either end (as the CT datasets
    stack 2.5D inputs)."""
    if not frames:
        raise ValueError('slab_frames: no frames given')
    last = len(frames) - 1
    return [frames[min(max(centre + int(o), 0), last)] for o in offsets]


def slab_to_sample(frames: Sequence[Frame],
                   offsets: Sequence[int] = (-1, 0, 1),
                   centre: int | None = None, **extra: Any
                   ) -> dict[str, Any]:
    """A slab of adjacent slices -> one sample, slices as channels.

    Args:
        frames: slices of one series in slice order: either the whole
            series (give ``centre``) or just the neighbours (``centre``
            defaults to the middle frame).
        offsets: slices relative to the centre that form the channels, in
            channel order (e.g. -1, 0, +1); past the ends of ``frames`` the
            edge slice is repeated.
        centre: position of the centre slice in ``frames``.
        **extra: more fields for the sample.

    Returns:
        the centre slice's sample (:func:`frame_to_sample`) with ``img``
        (H, W, K) for K offsets and ``slice_offsets``.

    Raises:
        ValueError: slices of different series or sizes, or images that
            are not single-channel slices.
    """
    offsets = [int(o) for o in offsets]
    if not offsets:
        raise ValueError('slab_to_sample: offsets is empty; give e.g. '
                         '(-1, 0, 1)')
    centre = len(frames) // 2 if centre is None else int(centre)
    if not 0 <= centre < len(frames):
        raise ValueError(f'slab_to_sample: centre {centre} is outside the '
                         f'{len(frames)} frames given')
    picked = slab_frames(frames, centre, offsets)
    middle = frames[centre]
    uids = {f.meta.get('series_uid') for f in picked}
    if len(uids) > 1:
        raise ValueError(f'slab_to_sample: slices of several series '
                         f'{sorted(map(str, uids))}; a slab takes adjacent '
                         'slices of one series')
    images = [_image(f) for f in picked]
    if any(im.shape[2] != 1 for im in images):
        raise ValueError('slab_to_sample: frames must be single-channel '
                         f'slices, got shapes {[im.shape for im in images]}')
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f'slab_to_sample: adjacent slices differ in size '
                         f'{sorted(shapes)}')
    sample = frame_to_sample(middle, **extra)
    img = np.concatenate(images, axis=2)
    sample.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
                  slice_offsets=offsets)
    return sample
