"""Albumentations (>=2.0,<2.1, the MIT line) inside perception pipelines,
box-safe and recorded so predictions map back.

``Albumentations`` runs an albumentations pipeline on ``img`` and
``gt_bboxes`` (pixel-edge xyxy, albumentations' ``pascal_voc``), carries
``gt_labels`` and ``gt_ignore_flags`` along with each surviving box, and
composes the geometry each applied transform performed into
``homography_matrix`` (current image <- original), ``scale_factor`` and
``intrinsics`` (the camera matrix of the current image). Config::

    dict(type='Albumentations',
         transforms=[dict(type='HorizontalFlip', p=0.5),
                     dict(type='RandomResizedCrop', size=(256, 512),
                          scale=(0.3, 1.0), p=1.0),
                     dict(type='ColorJitter', p=0.5)],
         min_visibility=0.3, min_area=16, small_boxes='ignore')

A label map (``gt_seg_map``) moves with the image, by nearest neighbour
(at pixel centres for resizes); pixels brought in from outside the image
(pads, affine borders) are :data:`~perception.structures.SEG_IGNORE_INDEX`
unless a transform sets ``fill_mask``.

Randomness comes from python's ``random`` (one seed drawn per call), so
a run seeded through mmengine repeats its augmentations and every data
loader worker draws its own (albumentations' own generator is seeded once,
and forked workers would share it).

Boxes are clipped to the image. A box that leaves the image entirely is
removed; one that keeps less than ``min_visibility`` of its area, or ends up
smaller than ``min_area`` / ``min_width`` / ``min_height``, becomes an
ignore region (``small_boxes='ignore'``, the default: a half-visible car is
not background) or is removed (``'drop'``).

Geometry is read from albumentations' applied parameters
(``save_applied_params``): flips, crops (every transform with
``crop_coords``), pads, resizes, ``Affine`` / ``ShiftScaleRotate``
(``bbox_matrix``) and ``Perspective`` (``matrix_bbox``); pixel-level
transforms change nothing. Other transforms that move pixels (elastic, grid
distortion, rotate-90 family) are refused with their name, because
predictions could not be mapped back.
"""
from __future__ import annotations

import random
import warnings
from typing import Sequence

import numpy as np

from perception.data.boxes import box_areas, clip_boxes, transform_boxes
from perception.data.geometry import record_geometry
from perception.data.transforms import INSTANCE_FIELDS, BaseTransform
from perception.registry import TRANSFORMS
from perception.structures import SEG_IGNORE_INDEX

_RESIZES = ('Resize', 'LongestMaxSize', 'SmallestMaxSize', 'RandomScale')
#: Pixel-centre -> pixel-edge coordinates (camera matrices use centres).
def _albumentations():
    import albumentations
    major_minor = tuple(int(v) for v in albumentations.__version__.split(
        '.')[:2])
    if major_minor != (2, 0):
        raise ImportError(
            f'albumentations {albumentations.__version__} is installed; '
            "perception needs 'albumentations>=2.0,<2.1' (the MIT-licensed "
            "line): pip install 'albumentations>=2.0,<2.1'")
    return albumentations


def build_albu(cfg: dict):
    """Build one albumentations transform from ``dict(type=Name, ...)``;
    nested ``transforms`` (OneOf, SomeOf, Sequential) are built too."""
    A = _albumentations()
    cfg = dict(cfg)
    name = cfg.pop('type', None)
    cls = getattr(A, str(name), None)
    if cls is None:
        raise ValueError(f"Albumentations: unknown transform type {name!r}; "
                         'use a class name of albumentations 2.0, e.g. '
                         "'HorizontalFlip'")
    if 'transforms' in cfg:
        cfg['transforms'] = [build_albu(t) for t in cfg['transforms']]
    _mask_defaults(cls, cfg)
    return cls(**cfg)


def _mask_defaults(cls, cfg: dict) -> None:
    """Label maps: pixels a transform brings in from outside the image are
    ignored (not class 0), and resizes sample at pixel centres (cv2's plain
    nearest is off by up to half a pixel from the recorded geometry)."""
    import inspect

    import cv2
    params = inspect.signature(cls.__init__).parameters
    if 'fill_mask' in params:
        cfg.setdefault('fill_mask', SEG_IGNORE_INDEX)
    if 'mask_interpolation' in params and 'fill_mask' not in params:
        cfg.setdefault('mask_interpolation', cv2.INTER_NEAREST_EXACT)


def _step_matrix(name: str, params: dict, in_hw: tuple, out_hw: tuple
                 ) -> np.ndarray:
    """Homography (pixel-edge coordinates) of one applied transform."""
    A = _albumentations()
    (h, w), (oh, ow) = in_hw, out_hw
    if 'bbox_matrix' in params:
        return np.asarray(params['bbox_matrix'], np.float64)
    if 'matrix_bbox' in params:
        matrix = np.asarray(params['matrix_bbox'], np.float64)
        mh, mw = params.get('max_height'), params.get('max_width')
        if mh and mw and (mh, mw) != (oh, ow):  # keep_size resized back
            matrix = np.diag([ow / mw, oh / mh, 1.0]) @ matrix
        return matrix
    if 'crop_coords' in params:
        x1, y1, x2, y2 = params['crop_coords']
        return np.array([[ow / (x2 - x1), 0, -x1 * ow / (x2 - x1)],
                         [0, oh / (y2 - y1), -y1 * oh / (y2 - y1)],
                         [0, 0, 1]], np.float64)
    if 'pad_top' in params:
        return np.array([[1, 0, params.get('pad_left', 0)],
                         [0, 1, params['pad_top']], [0, 0, 1]], np.float64)
    if name == 'HorizontalFlip':
        return np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]], np.float64)
    if name == 'VerticalFlip':
        return np.array([[1, 0, 0], [0, -1, h], [0, 0, 1]], np.float64)
    if name in _RESIZES:
        return np.diag([ow / w, oh / h, 1.0])
    cls = getattr(A, name, None)
    if cls is not None and issubclass(cls, A.ImageOnlyTransform):
        return np.eye(3)
    raise ValueError(
        f"Albumentations: '{name}' moves pixels in a way perception cannot "
        'record, so predictions could not be mapped back to the original '
        'image. Use flips, crops, pads, resizes, Affine, ShiftScaleRotate '
        'or Perspective, or pixel-level transforms.')


@TRANSFORMS.register_module()
class Albumentations(BaseTransform):
    """Run albumentations on ``img`` and the boxes; record the geometry.

    Args:
        transforms: albumentations transform configs
            (``dict(type='HorizontalFlip', p=0.5)``).
        min_visibility: fraction of a box's area that must stay in the
            image for it to remain a positive.
        min_area: smallest box area (px^2) that remains a positive.
        min_width: smallest box width (px) that remains a positive.
        min_height: smallest box height (px) that remains a positive.
        small_boxes: 'ignore' (turn such boxes into ignore regions) or
            'drop' (remove them).
        p: probability of applying the whole pipeline.
    """

    def __init__(self, transforms: Sequence[dict],
                 min_visibility: float = 0.0, min_area: float = 0.0,
                 min_width: float = 0.0, min_height: float = 0.0,
                 small_boxes: str = 'ignore', p: float = 1.0) -> None:
        A = _albumentations()
        if small_boxes not in ('ignore', 'drop'):
            raise ValueError(f"small_boxes must be 'ignore' or 'drop', got "
                             f'{small_boxes!r}')
        self.transforms = [dict(t) for t in transforms]
        self.min_visibility, self.min_area = min_visibility, min_area
        self.min_width, self.min_height = min_width, min_height
        self.small_boxes = small_boxes
        # albumentations only clips; visibility/size rules are ours, so that
        # boxes below them can become ignore regions instead of vanishing
        with warnings.catch_warnings():
            # a pixel-only pipeline still gets boxes: nothing to warn about
            warnings.filterwarnings('ignore', 'Got processor for bboxes')
            self._compose = A.Compose(
                [build_albu(t) for t in self.transforms], p=p,
                bbox_params=A.BboxParams(format='pascal_voc', clip=True,
                                         label_fields=['box_index']),
                save_applied_params=True)

    def transform(self, results: dict) -> dict:
        img = results['img']
        in_shape = img.shape[:2]
        has_boxes = 'gt_bboxes' in results
        boxes = clip_boxes(results.get('gt_bboxes', np.zeros((0, 4))),
                           in_shape)
        keep = box_areas(boxes) > 0  # albumentations rejects empty boxes
        index = np.flatnonzero(keep)
        extra = {}
        if 'gt_seg_map' in results:
            extra['mask'] = np.ascontiguousarray(results['gt_seg_map'])
        # albumentations keeps its own generator, seeded once from OS entropy:
        # forked data-loader workers would all replay the same augmentations
        # and a seeded run could not be repeated. Draw each call's seed from
        # python's random, which mmengine / torch seed per worker and run.
        self._compose.set_random_seed(random.getrandbits(32))
        out = self._compose(image=img, bboxes=boxes[keep], box_index=index,
                            **extra)
        results['img'] = out['image']
        if 'mask' in extra:
            results['gt_seg_map'] = np.ascontiguousarray(out['mask'])
        out_shape = out['image'].shape[:2]
        matrix = self._homography(out['applied_transforms'], in_shape,
                                  out_shape)
        flips = sum(name == 'HorizontalFlip'
                    for name, _ in out['applied_transforms'])
        results['flip'] = bool(results.get('flip', False)) ^ bool(flips % 2)
        if has_boxes:
            self._update_boxes(results, out, matrix)
        record_geometry(results, matrix, out_shape)
        return results

    @staticmethod
    def _homography(applied: list, in_shape, out_shape) -> np.ndarray:
        matrix = np.eye(3)
        for i, (name, params) in enumerate(applied):
            step_in = tuple(params['shape'][:2])
            step_out = (tuple(applied[i + 1][1]['shape'][:2])
                        if i + 1 < len(applied) else tuple(out_shape))
            matrix = _step_matrix(name, params, step_in, step_out) @ matrix
        return matrix

    def _update_boxes(self, results: dict, out: dict,
                      matrix: np.ndarray) -> None:
        index = np.asarray(out['box_index'], np.int64).reshape(-1)
        boxes = np.asarray(out['bboxes'], np.float32).reshape(-1, 4)
        labels = np.asarray(results['gt_labels'])[index]
        flags = np.asarray(results.get(
            'gt_ignore_flags', np.zeros(len(results['gt_labels']), bool)),
            bool)[index].copy()
        # the box the object would have without clipping: visibility base
        whole = transform_boxes(np.asarray(results['gt_bboxes'])[index],
                                matrix)
        area = box_areas(boxes)
        visible = area / np.maximum(box_areas(whole), 1e-6)
        small = ((visible < self.min_visibility) | (area < self.min_area)
                 | (boxes[:, 2] - boxes[:, 0] < self.min_width)
                 | (boxes[:, 3] - boxes[:, 1] < self.min_height)
                 | (area <= 0))
        # other per-box fields (occlusion, truncation) follow their boxes
        extras = {key: np.asarray(results[key])[index]
                  for key in INSTANCE_FIELDS if key in results
                  and key not in ('gt_bboxes', 'gt_labels', 'gt_ignore_flags')}
        if self.small_boxes == 'drop':
            keep = ~small | flags
            boxes, labels, flags = boxes[keep], labels[keep], flags[keep]
            extras = {key: value[keep] for key, value in extras.items()}
        else:
            flags |= small
        results['gt_bboxes'] = boxes
        results['gt_labels'] = labels
        results['gt_ignore_flags'] = flags
        results.update(extras)


    def __repr__(self) -> str:
        return (f'Albumentations(transforms={self.transforms}, '
                f'min_visibility={self.min_visibility}, '
                f'min_area={self.min_area}, small_boxes={self.small_boxes!r})')
