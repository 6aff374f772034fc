"""Multi-image augmentation: Mosaic and MixUp. Their extra samples come
from the dataset wrapper :class:`~perception.data.mix_dataset.MultiImageMixDataset`
(mmdet 3's habit) in ``results['mix_results']``.

* **Mosaic** (Bochkovskiy et al., "YOLOv4: Optimal Speed and Accuracy of
  Object Detection", 2020): four images, each fitted into ``img_scale``,
  meet at a random centre of a canvas twice that size.
* **MixUp** (Zhang et al., "mixup: Beyond Empirical Risk Minimization",
  ICLR 2018), as YOLOX uses it for detection (Ge et al., "YOLOX: Exceeding
  YOLO Series in 2021"): a second image, jittered in scale, flipped and
  cropped, is blended into the first and the two box sets are joined.

Config (the inner dataset loads, the wrapper mixes; a switch hook,
:class:`perception.engine.mix_switch.MixSwitchHook`, turns both off for the
last epochs)::

    train_dataloader = dict(dataset=dict(
        type='MultiImageMixDataset',
        dataset=dict(type='KittiDataset', data_root=..., pipeline=[
            dict(type='LoadImage')]),
        pipeline=[
            dict(type='Mosaic', img_scale=(512, 256)),
            # back to 512x256: random scale and shift, then the centre
            dict(type='Albumentations', transforms=[
                dict(type='Affine', scale=(0.5, 1.5),
                     translate_percent=(-0.1, 0.1), p=1.0),
                dict(type='CenterCrop', height=256, width=512)]),
            dict(type='MixUp', ratio_range=(0.8, 1.6)),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackInputs')]))

Boxes (``gt_bboxes``) and every other per-box field
(:data:`~perception.data.transforms.INSTANCE_FIELDS`: labels, -1 for
class-agnostic regions, ignore flags, occlusion, truncation) move together.
Boxes are clipped to the output image; a positive box whose visible part
is narrower or lower than ``min_bbox_size`` px, or keeps less than
``min_area_ratio`` of its area, is dropped (``small_boxes='drop'``) or
becomes an ignore region (``'ignore'``); ignore regions stay while any part
of them is visible. Dropped boxes are counted in the sample's
``mix_dropped_boxes`` meta and the transform's ``dropped`` counter.

Geometry: a mosaic's ``homography_matrix`` / ``scale_factor`` /
``intrinsics`` stay those of the main (top-left) image, but the sample is
marked ``mosaic=True`` and :func:`perception.data.boxes_to_source` refuses
it: a mosaic has no single source. MixUp keeps the main image's geometry
(the blended pixels come from elsewhere; ``mixup=True``). Both are
training-only augmentations.
"""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from perception.data.boxes import box_areas, clip_boxes, transform_boxes
from perception.data.geometry import record_geometry
from perception.data.transforms import INSTANCE_FIELDS, BaseTransform, resize_image
from perception.errors import UserError
from perception.registry import TRANSFORMS

#: Per-box fields besides the boxes, and the value of a box that lacks one.
_FILL = {'gt_labels': (np.int64, -1), 'gt_ignore_flags': (bool, False)}


def _as_image(img: np.ndarray) -> np.ndarray:
    return img[..., None] if img.ndim == 2 else img


def _box_parts(results: dict, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """The per-box fields of one sample, boxes mapped through ``matrix``."""
    boxes = np.asarray(results.get('gt_bboxes', np.zeros((0, 4))),
                       np.float32).reshape(-1, 4)
    parts = {'gt_bboxes': transform_boxes(boxes, matrix)}
    for key in INSTANCE_FIELDS:
        if key != 'gt_bboxes' and key in results:
            parts[key] = np.asarray(results[key]).reshape(-1)
    return parts


def _concat(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join the per-box fields of several samples; a field one sample lacks
    gets -1 labels, False flags or NaN attributes for its boxes."""
    keys = [k for k in INSTANCE_FIELDS if any(k in p for p in parts)]
    out = {}
    for key in keys:
        chunks = []
        for p in parts:
            n = len(p['gt_bboxes'])
            if key in p:
                chunks.append(p[key])
            else:
                dtype, fill = _FILL.get(key, (np.float32, np.nan))
                chunks.append(np.full(n, fill, dtype))
        dtype = np.float32 if key == 'gt_bboxes' else _FILL.get(
            key, (np.float32, None))[0]
        out[key] = np.concatenate(chunks).astype(dtype)
    out['gt_bboxes'] = out['gt_bboxes'].reshape(-1, 4)
    return out


class _BoxRules:
    """Clip to the output image and drop (or ignore) boxes that shrank."""

    def __init__(self, min_bbox_size: float, min_area_ratio: float,
                 small_boxes: str) -> None:
        if small_boxes not in ('drop', 'ignore'):
            raise ValueError(f"small_boxes must be 'drop' or 'ignore', got "
                             f'{small_boxes!r}')
        self.min_bbox_size = float(min_bbox_size)
        self.min_area_ratio = float(min_area_ratio)
        self.small_boxes = small_boxes
        self.dropped = 0  # boxes dropped by this transform in this process

    def apply(self, fields: dict, shape: tuple[int, int]) -> tuple[dict, int]:
        """Clip ``fields['gt_bboxes']`` to ``shape`` (height, width); return
        the kept fields and how many boxes were dropped."""
        whole = box_areas(fields['gt_bboxes'])
        boxes = clip_boxes(fields['gt_bboxes'], shape)
        area = box_areas(boxes)
        flags = fields.get('gt_ignore_flags', np.zeros(len(boxes), bool)
                           ).astype(bool)
        small = ((boxes[:, 2] - boxes[:, 0] < self.min_bbox_size)
                 | (boxes[:, 3] - boxes[:, 1] < self.min_bbox_size)
                 | (area < self.min_area_ratio * whole))
        keep = area > 0
        if self.small_boxes == 'drop':
            keep &= flags | ~small
        else:
            flags = flags | (small & keep)
        out = {k: v[keep] for k, v in fields.items()}
        out['gt_bboxes'] = boxes[keep]
        out['gt_ignore_flags'] = flags[keep]
        dropped = int((~keep).sum())
        self.dropped += dropped
        return out, dropped


def _store(results: dict, fields: dict, dropped: int) -> None:
    results.update(fields)
    results['mix_dropped_boxes'] = int(
        results.get('mix_dropped_boxes', 0)) + dropped


class LabelMapMixError(UserError, ValueError):
    """Mosaic / MixUp met a label map (they mix boxes only)."""


def _refuse_label_maps(results: dict, name: str) -> None:
    """Mixing images does not mix their label maps: refuse rather than
    train on a mask of another image."""
    if 'gt_seg_map' in results:
        raise LabelMapMixError(f'{name} mixes boxes, not label maps (gt_seg_map of '
                         f"{results.get('img_path')}); leave it out of "
                         'segmentation pipelines')


@TRANSFORMS.register_module()
class Mosaic(BaseTransform):
    """Four images on one canvas of (2 * height, 2 * width) (YOLOv4; the
    YOLOX / mmdet 3 layout): each is resized with its aspect to fit
    ``img_scale`` and placed against a random centre, the main image top
    left, the three from ``results['mix_results']`` top right, bottom left,
    bottom right. Follow it with a scale-and-crop back to ``img_scale``
    (module docstring).

    Args:
        img_scale: (width, height) each image is fitted into.
        center_ratio_range: range of the centre, as a fraction of
            ``img_scale``, on each axis.
        pad_val: value of canvas pixels no image covers (YOLOX: 114).
        prob: probability of making a mosaic (else the sample passes).
        min_bbox_size: smallest visible width and height (px) of a
            positive box.
        min_area_ratio: smallest fraction of its area a positive box keeps.
        small_boxes: 'drop' or 'ignore' (become ignore regions).
        interpolation: resize interpolation.
    """

    def __init__(self, img_scale: Sequence[int] = (640, 640),
                 center_ratio_range: Sequence[float] = (0.5, 1.5),
                 pad_val: float = 114, prob: float = 1.0,
                 min_bbox_size: float = 2.0, min_area_ratio: float = 0.1,
                 small_boxes: str = 'drop',
                 interpolation: str = 'bilinear') -> None:
        self.img_scale = (int(img_scale[0]), int(img_scale[1]))
        self.center_ratio_range = tuple(center_ratio_range)
        self.pad_val, self.prob = pad_val, prob
        self.interpolation = interpolation
        self._rules = _BoxRules(min_bbox_size, min_area_ratio, small_boxes)

    @property
    def dropped(self) -> int:
        """Boxes this transform dropped in this process."""
        return self._rules.dropped

    def get_indexes(self, dataset) -> list[int]:
        """Three random indices of ``dataset`` for the other quadrants."""
        return [random.randrange(len(dataset)) for _ in range(3)]

    def _place(self, corner: int, cx: int, cy: int, w: int, h: int
               ) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
        """Paste region (x1, y1, x2, y2) on the canvas of a (w, h) image at
        ``corner`` (0 top left .. 3 bottom right of the centre) and the
        offset (x, y) of the image's origin on the canvas."""
        cw, ch = 2 * self.img_scale[0], 2 * self.img_scale[1]
        left = cx - w if corner in (0, 2) else cx
        top = cy - h if corner in (0, 1) else cy
        paste = (max(left, 0), max(top, 0), min(left + w, cw),
                 min(top + h, ch))
        return paste, (left, top)

    def transform(self, results: dict) -> dict:
        _refuse_label_maps(results, 'Mosaic')
        if random.random() >= self.prob:
            return results
        others = list(results.get('mix_results') or [])
        if len(others) != 3:
            raise ValueError('Mosaic needs three other samples in '
                             "results['mix_results']; wrap the dataset in "
                             "dict(type='MultiImageMixDataset', dataset=..., "
                             'pipeline=[dict(type=\'Mosaic\'), ...])')
        w, h = self.img_scale
        main = _as_image(results['img'])
        canvas = np.full((2 * h, 2 * w, main.shape[2]), self.pad_val,
                         dtype=main.dtype)
        cx = int(random.uniform(*self.center_ratio_range) * w)
        cy = int(random.uniform(*self.center_ratio_range) * h)
        parts, main_matrix = [], None
        for corner, sample in enumerate([results] + others):
            img = _as_image(sample['img'])
            if img.shape[2] != canvas.shape[2]:
                raise ValueError(
                    f"Mosaic: {sample.get('img_path')!r} has "
                    f'{img.shape[2]} channels, the main image '
                    f'{canvas.shape[2]}; load every image alike')
            ih, iw = img.shape[:2]
            scale = min(h / ih, w / iw)
            nw, nh = max(int(iw * scale), 1), max(int(ih * scale), 1)
            img = resize_image(img, nw, nh, self.interpolation)
            (x1, y1, x2, y2), (left, top) = self._place(corner, cx, cy, nw,
                                                        nh)
            canvas[y1:y2, x1:x2] = img[y1 - top:y2 - top, x1 - left:x2 - left]
            matrix = np.array([[nw / iw, 0, left], [0, nh / ih, top],
                               [0, 0, 1]], np.float64)
            main_matrix = matrix if main_matrix is None else main_matrix
            parts.append(_box_parts(sample, matrix))
        fields, dropped = self._rules.apply(_concat(parts), canvas.shape[:2])
        results.pop('mix_results', None)
        results['img'] = canvas
        _store(results, fields, dropped)
        record_geometry(results, main_matrix, canvas.shape[:2])
        results['mosaic'] = True
        return results


@TRANSFORMS.register_module()
class MixUp(BaseTransform):
    """Blend a second image into this one and join their boxes (mixup as
    YOLOX applies it to detection). The second image is fitted into
    ``img_scale``, scaled by a random factor, flipped with ``flip_ratio``,
    placed on a ``pad_val`` canvas and cropped at a random place to this
    image's size. This image's geometry is unchanged.

    Args:
        img_scale: (width, height) the second image is fitted into before
            jitter; default this image's size.
        ratio_range: range of the scale jitter.
        flip_ratio: probability of flipping the second image.
        pad_val: value of pixels the second image does not cover.
        alpha: None blends half and half (YOLOX); a number draws the weight
            of this image from Beta(alpha, alpha) (Zhang et al.).
        prob: probability of mixing (else the sample passes).
        max_iters: tries to draw a second sample that has boxes.
        min_bbox_size: as :class:`Mosaic`, for the second image's boxes.
        min_area_ratio: as :class:`Mosaic`.
        small_boxes: 'drop' or 'ignore'.
        interpolation: resize interpolation.
    """

    def __init__(self, img_scale: Sequence[int] | None = None,
                 ratio_range: Sequence[float] = (0.5, 1.5),
                 flip_ratio: float = 0.5, pad_val: float = 114,
                 alpha: float | None = None, prob: float = 1.0,
                 max_iters: int = 15, min_bbox_size: float = 2.0,
                 min_area_ratio: float = 0.1, small_boxes: str = 'drop',
                 interpolation: str = 'bilinear') -> None:
        self.img_scale = None if img_scale is None else (
            int(img_scale[0]), int(img_scale[1]))
        self.ratio_range, self.flip_ratio = tuple(ratio_range), flip_ratio
        self.pad_val, self.alpha, self.prob = pad_val, alpha, prob
        self.max_iters, self.interpolation = max_iters, interpolation
        self._rules = _BoxRules(min_bbox_size, min_area_ratio, small_boxes)

    @property
    def dropped(self) -> int:
        """Boxes of second images this transform dropped in this process."""
        return self._rules.dropped

    def get_indexes(self, dataset) -> list[int]:
        """One random index whose annotation has boxes (read from
        ``get_data_info``, no image decoded), or the last one tried."""
        index = 0
        for _ in range(self.max_iters):
            index = random.randrange(len(dataset))
            info = (dataset.get_data_info(index)
                    if hasattr(dataset, 'get_data_info') else {})
            if len(info.get('gt_bboxes', ())) or 'gt_bboxes' not in info:
                break
        return [index]

    def transform(self, results: dict) -> dict:
        _refuse_label_maps(results, 'MixUp')
        others = list(results.get('mix_results') or [])
        if len(others) != 1:
            raise ValueError("MixUp needs one other sample in results["
                             "'mix_results']; wrap the dataset in "
                             "dict(type='MultiImageMixDataset', ...)")
        other = others[0]
        if (random.random() >= self.prob
                or not len(other.get('gt_bboxes', ()))):
            results.pop('mix_results', None)
            return results
        main = _as_image(results['img'])
        img = _as_image(other['img'])
        if img.shape[2] != main.shape[2]:
            raise ValueError(f"MixUp: {other.get('img_path')!r} has "
                             f'{img.shape[2]} channels, the main image '
                             f'{main.shape[2]}; load every image alike')
        th, tw = main.shape[:2]
        fit_w, fit_h = self.img_scale or (tw, th)
        jitter = random.uniform(*self.ratio_range)
        ih, iw = img.shape[:2]
        scale = min(fit_h / ih, fit_w / iw) * jitter
        nw, nh = max(int(iw * scale), 1), max(int(ih * scale), 1)
        img = resize_image(img, nw, nh, self.interpolation)
        # canvas as large as the jittered fit box, at least this image
        cw = max(int(fit_w * jitter), nw, tw)
        ch = max(int(fit_h * jitter), nh, th)
        canvas = np.full((ch, cw, main.shape[2]), self.pad_val, main.dtype)
        canvas[:nh, :nw] = img
        matrix = np.diag([nw / iw, nh / ih, 1.0])
        if random.random() < self.flip_ratio:
            canvas = canvas[:, ::-1]
            matrix = np.array([[-1, 0, cw], [0, 1, 0], [0, 0, 1]]) @ matrix
        x_off = random.randint(0, cw - tw)
        y_off = random.randint(0, ch - th)
        crop = canvas[y_off:y_off + th, x_off:x_off + tw]
        matrix = np.array([[1, 0, -x_off], [0, 1, -y_off], [0, 0, 1]]
                          ) @ matrix
        # python's random: data loader workers seed it apart
        lam = 0.5 if self.alpha is None else random.betavariate(
            self.alpha, self.alpha)
        mixed = lam * main.astype(np.float32) + (1 - lam) * crop.astype(
            np.float32)
        if np.issubdtype(main.dtype, np.integer):
            info = np.iinfo(main.dtype)
            mixed = np.clip(np.round(mixed), info.min, info.max)
        results['img'] = mixed.astype(main.dtype)
        second, dropped = self._rules.apply(_box_parts(other, matrix),
                                            (th, tw))
        ident = _box_parts(results, np.eye(3))
        fields = _concat([ident, second])
        results.pop('mix_results', None)
        _store(results, fields, dropped)
        results['mixup'] = True
        return results
