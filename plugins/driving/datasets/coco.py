"""COCO detection reader (the COCO "data format" page), parsed directly.

``images`` (id, width, height, file_name), ``annotations`` (id, image_id,
category_id, bbox ``[x, y, width, height]`` from the top-left pixel edge,
area, iscrowd) and ``categories`` (id, name). ``iscrowd=1`` boxes are
ignore regions. ``info`` and ``licenses`` are optional.

Supported: boxes, crowd as ignore, any category ids (labels follow the class
map, or the file's categories sorted by id when ``class_map=None``).
Left out: segmentation masks and keypoints (kept only as the raw
annotation's presence), captions, panoptic files.
"""
from __future__ import annotations

import os
from collections import defaultdict

from perception.data import BadSampleError
from perception.data.boxes import xywh_to_xyxy
from perception.registry import DATASETS

from .base_det_dataset import DrivingDetDataset, load_json, numbers


@DATASETS.register_module()
class CocoDetDataset(DrivingDetDataset):
    """COCO-format 2D detection.

    Args:
        data_root: dataset folder.
        ann_file: COCO JSON (``annotations/instances_val2017.json``).
        img_dir: image folder (``val2017``).
        class_map: as for every driving dataset; default ``'coco'`` (the 80
            COCO classes to the driving taxonomy). ``None`` keeps the
            file's own categories (sorted by id) as the classes.
        **kwargs: :class:`~.base_det_dataset.DrivingDetDataset`
            arguments (filters, pipeline, on_bad_sample, ...).
    """

    default_class_map = 'coco'

    def __init__(self, data_root: str = '', ann_file: str = '',
                 img_dir: str = '', class_map='coco', **kwargs) -> None:
        self.coco_ann_file, self.img_dir = ann_file, img_dir
        self.keep_categories = class_map is None
        self.cat_names: dict[int, str] = {}
        super().__init__(data_root=data_root,
                         class_map=class_map or 'coco', **kwargs)
        if self.keep_categories:
            self.class_map = None

    def source_label(self, source: str, where: str) -> int | None:
        if self.keep_categories:
            return self._own_classes.index(source)
        return super().source_label(source, where)

    def sample_keys(self) -> list:
        path = self.path(self.coco_ann_file)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'CocoDetDataset: ann_file {path} does '
                                    'not exist')
        coco = load_json(path)
        for table in ('images', 'annotations', 'categories'):
            if not isinstance(coco, dict) or not isinstance(
                    coco.get(table), list):
                raise ValueError(f"{path}: table '{table}' is missing or not "
                                 'a list (COCO data format)')
        for i, cat in enumerate(coco['categories']):
            if 'id' not in cat or 'name' not in cat:
                raise ValueError(f'{path}: categories[{i}] needs id and name')
            self.cat_names[cat['id']] = cat['name']
        if self.keep_categories:
            self.class_map = None
            self._own_classes = tuple(self.cat_names[k]
                                      for k in sorted(self.cat_names))
            self._metainfo['classes'] = self._own_classes
        by_image = defaultdict(list)
        for i, ann in enumerate(coco['annotations']):
            if 'image_id' not in ann:
                raise ValueError(f'{path}: annotations[{i}] has no image_id')
            by_image[ann['image_id']].append((i, ann))
        self._ann_path = path
        images = {img.get('id') for img in coco['images']
                  if isinstance(img, dict)}
        for image_id in sorted(set(by_image) - images, key=str):
            for i, ann in by_image[image_id]:  # labels of no image
                self.skip_bad(BadSampleError(
                    f"{path}: annotations[{i}] (id {ann.get('id', '?')}): "
                    f'image_id {image_id!r} is not in images; add the image '
                    'or delete the annotation'))
        return [(i, img, by_image.get(img.get('id'), []))
                for i, img in enumerate(coco['images'])]

    def parse_sample(self, key) -> dict:
        index, image, anns = key
        path = self._ann_path
        for field in ('id', 'file_name', 'width', 'height'):
            if field not in image:
                raise BadSampleError(f"{path}: images[{index}]: field "
                                     f"'{field}' is missing")
        height, width = numbers([image['height'], image['width']], 2,
                                f'{path}: images[{index}]', 'height, width',
                                positive=True)
        info = dict(img_path=os.path.join(self.path(self.img_dir),
                                          image['file_name']),
                    img_id=image['id'], height=int(height), width=int(width),
                    instances=[])
        for i, ann in anns:
            where = f"{path}: annotations[{i}] (id {ann.get('id', '?')})"
            for field in ('bbox', 'category_id'):
                if field not in ann:
                    raise BadSampleError(f"{where}: field '{field}' is "
                                         'missing')
            if ann['category_id'] not in self.cat_names:
                raise BadSampleError(f"{where}: category_id "
                                     f"{ann['category_id']} is not in "
                                     'categories')
            bbox = numbers(ann['bbox'], 4, where, 'bbox [x, y, width, height]')
            # COCO's area (of the segmentation where there is one) decides
            # the size bin; w * h of the file's numbers without one
            area = (numbers([ann['area']], 1, where, 'area')[0]
                    if ann.get('area') is not None else bbox[2] * bbox[3])
            info['instances'].append(dict(
                bbox=xywh_to_xyxy([bbox])[0], area=area,
                source=self.cat_names[ann['category_id']], where=where,
                ignore=bool(ann.get('iscrowd', 0))))
        return info
