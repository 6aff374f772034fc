"""Label maps for semantic segmentation: reading label PNGs exactly and
mapping the ids a format stores onto a model's class indices.

A dataset puts ``seg_map_path`` (a single-channel PNG: 8- or 16-bit grey,
or a palette PNG whose indices are the ids) and ``seg_id_map`` (stored id
-> class index, or :data:`~perception.structures.SEG_IGNORE_INDEX`) in each
sample; :class:`LoadSegMap` reads the file into ``gt_seg_map`` (H, W)
uint8. An id missing from the map is a :class:`SegLabelError` naming the
file and the id: nothing is relabelled or dropped silently.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from perception.data.base_dataset import BadSampleError
from perception.data.transforms import BaseTransform
from perception.errors import UserError
from perception.registry import TRANSFORMS
from perception.structures import SEG_IGNORE_INDEX


class SegLabelError(UserError, ValueError):
    """A label map holds an id its class map does not name, or is not a
    label map at all (a colour picture)."""


def read_label_png(path: str) -> np.ndarray:
    """The ids stored in a label PNG, (H, W) uint8 or uint16, unchanged.

    Raises:
        BadSampleError: the file is missing or cannot be decoded.
        SegLabelError: it is a colour picture (RGB), not a label map.
    """
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ('RGB', 'RGBA', 'LA'):
                raise SegLabelError(
                    f'{path}: a {mode} colour picture, not a label map; use '
                    'the single-channel id masks (BDD100K labels/.../masks/, '
                    "Cityscapes *_labelIds.png), not the colormaps")
            array = np.asarray(image)
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise BadSampleError(f'{path}: cannot read the label map ({exc})'
                             ) from exc
    if array.dtype not in (np.uint8, np.uint16):
        array = array.astype(np.int64)
        if array.min() < 0 or array.max() > 65535:
            raise SegLabelError(f'{path}: ids outside 0..65535 in a label map')
        array = array.astype(np.uint16)
    return array


def map_ids(ids: np.ndarray, id_map: Mapping[int, int], where: str
            ) -> np.ndarray:
    """Stored ids -> class indices (uint8) through ``id_map``.

    Args:
        ids: (H, W) integer ids as stored.
        id_map: stored id -> class index or SEG_IGNORE_INDEX.
        where: the file, for messages.

    Raises:
        SegLabelError: an id of ``ids`` is not in ``id_map``.
    """
    present = np.flatnonzero(np.bincount(ids.ravel().astype(np.int64)))
    missing = [int(i) for i in present if int(i) not in id_map]
    if missing:
        shown = ', '.join(str(i) for i in missing[:8])
        raise SegLabelError(
            f'{where}: label id(s) {shown} not in the class map '
            f'(it maps {len(id_map)} ids); add them to the class map (as a '
            f'class or ignore) or fix the mask')
    lut = np.full(int(present.max()) + 1 if len(present) else 1,
                  SEG_IGNORE_INDEX, np.uint8)
    for key, value in id_map.items():
        if 0 <= int(key) < len(lut):
            lut[int(key)] = value
    return lut[ids]


@TRANSFORMS.register_module()
class LoadSegMap(BaseTransform):
    """Read ``seg_map_path`` into ``gt_seg_map`` (H, W) uint8 class
    indices through the sample's ``seg_id_map`` (identity when absent).

    Put it before the geometric transforms in training pipelines (they move
    the map with the image) and after them in test pipelines, so the metric
    compares with the full-resolution ground truth in source pixels.
    """

    def transform(self, results: dict) -> dict:
        path = results['seg_map_path']
        ids = read_label_png(path)
        id_map = results.get('seg_id_map')
        if id_map is None:
            if ids.dtype != np.uint8:
                raise SegLabelError(f'{path}: 16-bit ids need a class map '
                                    '(seg_id_map) onto 8-bit class indices')
            results['gt_seg_map'] = ids
        else:
            results['gt_seg_map'] = map_ids(ids, id_map, path)
        if 'img' in results and results['gt_seg_map'].shape[:2] != tuple(
                results.get('ori_shape', results['img'].shape[:2])):
            raise BadSampleError(
                f"{path}: label map is {results['gt_seg_map'].shape[:2]} but "
                f"its image is {tuple(results['ori_shape'])} (height, width)")
        return results
