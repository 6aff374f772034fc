"""Explicit transforms on a dict of fields (MONAI habit), built from
``TRANSFORMS``. Each does one thing; geometric ones record what they did in
``scale_factor`` / ``homography_matrix`` so predictions map back."""
from __future__ import annotations

import math
import random
from typing import Sequence

import numpy as np
import torch

from perception.data.base_dataset import BadSampleError
from perception.data.geometry import record_geometry
from perception.data.image_io import ImageReadError, read_image
from perception.registry import TRANSFORMS
from perception.structures import DataSample, make_instances, make_sem_seg


class BaseTransform:
    """A callable on a results dict; returns the dict (or None to drop)."""

    def __call__(self, results: dict) -> dict | None:
        return self.transform(results)

    def transform(self, results: dict) -> dict | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items()
                         if not k.startswith('_'))
        return f'{type(self).__name__}({args})'


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Read ``img_path`` into ``img`` (H, W, C), any channel count, with
    :func:`perception.data.image_io.read_image` (its 16-bit rule).

    Args:
        color_type: 'color' (RGB uint8, 3 channels), 'grayscale' (uint8, 1
            channel) or 'unchanged' (native depth and channels, e.g.
            uint16).
    """

    def __init__(self, color_type: str = 'color') -> None:
        if color_type not in ('color', 'grayscale', 'unchanged'):
            raise ValueError(f"color_type must be 'color', 'grayscale' or "
                             f"'unchanged', got {color_type!r}")
        self.color_type = color_type

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        try:
            array = read_image(path, raw=self.color_type == 'unchanged',
                               gray=self.color_type == 'grayscale')
        except ImageReadError as exc:
            raise BadSampleError(str(exc)) from exc
        if array.ndim == 2:
            array = array[..., None]
        results['img'] = array
        results['img_shape'] = array.shape[:2]
        results['ori_shape'] = array.shape[:2]
        return results


@TRANSFORMS.register_module()
class Resize(BaseTransform):
    """Resize ``img`` to ``scale`` = (width, height); boxes and the label
    map ``gt_seg_map`` (nearest, at pixel centres) follow.

    Args:
        scale: (width, height) of the output, or with ``keep_ratio`` the
            box the image is fitted into.
        keep_ratio: scale by one factor so the image fits inside ``scale``
            (mmdet's ``keep_ratio=True``); the data preprocessor pads the
            batch.
        interpolation: ``bilinear``, ``bicubic``, ``nearest``...
    """

    def __init__(self, scale: Sequence[int], interpolation: str = 'bilinear',
                 keep_ratio: bool = False) -> None:
        self.scale = tuple(scale)
        self.interpolation = interpolation
        self.keep_ratio = keep_ratio

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        new_w, new_h = fit_size((h, w), self.scale, self.keep_ratio)
        results['img'] = resize_image(img, new_w, new_h, self.interpolation)
        sx, sy = new_w / w, new_h / h
        if 'gt_bboxes' in results:
            results['gt_bboxes'] = (np.asarray(results['gt_bboxes'],
                                               np.float32)
                                    * np.array([sx, sy, sx, sy], np.float32))
        if 'gt_seg_map' in results:
            results['gt_seg_map'] = resize_seg_map(results['gt_seg_map'],
                                                   new_w, new_h)
        record_geometry(results, np.diag([sx, sy, 1.0]), (new_h, new_w))
        return results


def fit_size(shape: Sequence[int], scale: Sequence[int],
             keep_ratio: bool) -> tuple[int, int]:
    """(width, height) an image of ``shape`` (height, width) is resized to:
    ``scale`` itself, or with ``keep_ratio`` the largest size with the
    image's aspect that fits inside it."""
    width, height = int(scale[0]), int(scale[1])
    if not keep_ratio:
        return width, height
    factor = min(width / shape[1], height / shape[0])
    return (max(int(round(shape[1] * factor)), 1),
            max(int(round(shape[0] * factor)), 1))


#: interpolations with a native uint8 kernel in torch (CPU).
_UINT8_MODES = ('bilinear', 'bicubic')


def resize_image(img: np.ndarray, width: int, height: int,
                 interpolation: str = 'bilinear') -> np.ndarray:
    """Resize (H, W, C) of any dtype and channel count. ``nearest-exact``
    samples at pixel centres (what the recorded geometry says); torch's
    ``nearest`` is off by up to half a pixel."""
    tensor = torch.from_numpy(np.require(img, requirements=['C', 'W'])
                              ).permute(2, 0, 1)
    nearest = interpolation.startswith('nearest')
    if img.dtype == np.uint8 and interpolation in _UINT8_MODES:
        # torch's native uint8 kernels (antialiased, rounded): ~15-70x faster
        # than through float at 1080p, within 1-2 grey levels of it.
        out = torch.nn.functional.interpolate(
            tensor[None], size=(height, width), mode=interpolation,
            align_corners=False, antialias=True)[0]
        return np.ascontiguousarray(out.permute(1, 2, 0).numpy())
    out = torch.nn.functional.interpolate(
        tensor[None].float(), size=(height, width), mode=interpolation,
        align_corners=None if nearest else False, antialias=not nearest)[0]
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        out = out.round().clamp(info.min, info.max)
    return out.permute(1, 2, 0).numpy().astype(img.dtype)


def resize_seg_map(seg_map: np.ndarray, width: int, height: int
                   ) -> np.ndarray:
    """Resize an (H, W) label map by pixel-centre nearest neighbour
    (labels never blend), exactly as the recorded scale says."""
    return resize_image(np.asarray(seg_map)[..., None], width, height,
                        'nearest-exact')[..., 0]


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random area/aspect and resize to ``size`` = (height, width)
    (the MAE / torchvision recipe). Image and label map (``gt_seg_map``,
    nearest); not for boxes."""

    def __init__(self, size: int | Sequence[int],
                 crop_scale: Sequence[float] = (0.2, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3),
                 interpolation: str = 'bicubic') -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.crop_scale, self.ratio = tuple(crop_scale), tuple(ratio)
        self.interpolation = interpolation

    def _crop_box(self, h: int, w: int) -> tuple[int, int, int, int]:
        area = h * w
        target_ratio = self.size[1] / self.size[0]
        log_ratio = [math.log(r * target_ratio) for r in self.ratio]
        for _ in range(10):
            target = area * random.uniform(*self.crop_scale)
            aspect = math.exp(random.uniform(*log_ratio))
            cw = int(round(math.sqrt(target * aspect)))
            ch = int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return (random.randint(0, h - ch), random.randint(0, w - cw),
                        ch, cw)
        return 0, 0, h, w

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left, ch, cw = self._crop_box(*img.shape[:2])
        crop = img[top:top + ch, left:left + cw]
        out_h, out_w = self.size
        results['img'] = resize_image(crop, out_w, out_h,
                                      self.interpolation)
        if 'gt_seg_map' in results:
            results['gt_seg_map'] = resize_seg_map(
                results['gt_seg_map'][top:top + ch, left:left + cw], out_w,
                out_h)
        sx, sy = out_w / cw, out_h / ch
        record_geometry(results, np.array(
            [[sx, 0, -left * sx], [0, sy, -top * sy], [0, 0, 1]]),
            (out_h, out_w))
        return results


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Horizontal flip with probability ``prob``; boxes and the label map
    follow."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if random.random() >= self.prob:
            results['flip'] = False
            return results
        img = results['img']
        w = img.shape[1]
        results['img'] = np.ascontiguousarray(img[:, ::-1])
        if 'gt_bboxes' in results:
            boxes = np.asarray(results['gt_bboxes'], np.float32).copy()
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
            results['gt_bboxes'] = boxes
        if 'gt_seg_map' in results:
            results['gt_seg_map'] = np.ascontiguousarray(
                results['gt_seg_map'][:, ::-1])
        record_geometry(results, np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]]),
                        img.shape[:2])
        results['flip'] = True
        return results


DEFAULT_META_KEYS = ('img_path', 'img_id', 'img_shape', 'ori_shape', 'scale_factor',
                     'homography_matrix', 'flip', 'camera', 'timestamp_ns',
                     'intrinsics', 'series_uid', 'slice_index', 'affine',
                     'slice_offsets', 'sample_idx', 'mosaic', 'mixup',
                     'mix_dropped_boxes', 'seg_map_path')

#: Per-box fields of a results dict: row i of each describes box i of
#: ``gt_bboxes``; transforms that drop, reorder or merge boxes (the
#: albumentations bridge, Mosaic, MixUp) move them all together, and
#: :class:`PackInputs` packs each present one into the ``gt_instances``
#: field named here. ``gt_occluded`` / ``gt_truncated`` (float32, NaN where
#: unknown) are what readers know of each object, for metrics that rank
#: difficulty by them; ``gt_areas`` (float64) is each object's COCO
#: ``area`` in source pixels, which puts it in a size bin (CocoMetric).
INSTANCE_FIELDS = {'gt_bboxes': 'bboxes', 'gt_labels': 'labels',
                   'gt_ignore_flags': 'ignore_flags',
                   'gt_occluded': 'occluded', 'gt_truncated': 'truncated',
                   'gt_areas': 'areas'}


@TRANSFORMS.register_module()
class PackInputs(BaseTransform):
    """Pack ``img`` (H, W, C) into ``inputs`` (C, H, W) tensor (dtype kept)
    and the rest into a :class:`DataSample` (``gt_label``, ``gt_instances``
    from the :data:`INSTANCE_FIELDS` present, ``gt_sem_seg`` from
    ``gt_seg_map``, meta keys)."""

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = np.ascontiguousarray(results['img'])
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(img).permute(2, 0, 1).contiguous()
        sample = DataSample()
        if 'gt_label' in results:
            sample.set_gt_label(results['gt_label'])
        if 'gt_bboxes' in results:
            instances = make_instances(
                results['gt_bboxes'], results['gt_labels'],
                results.get('gt_ignore_flags'))
            for key, field in INSTANCE_FIELDS.items():
                if key in results and field not in instances:
                    # areas decide COCO size bins at exact edges (32^2):
                    # kept in float64
                    dtype = np.float64 if key == 'gt_areas' else np.float32
                    setattr(instances, field, torch.as_tensor(
                        np.asarray(results[key], dtype)).reshape(-1))
            sample.gt_instances = instances
        if 'gt_seg_map' in results:
            sample.gt_sem_seg = make_sem_seg(
                np.asarray(results['gt_seg_map']).astype(np.int64))
        sample.set_metainfo({k: results[k] for k in self.meta_keys
                             if k in results})
        return dict(inputs=inputs, data_samples=sample)
