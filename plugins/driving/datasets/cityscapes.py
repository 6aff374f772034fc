"""Cityscapes-style label maps: ``leftImg8bit`` images and ``gtFine``
``*_labelIds.png`` masks, parsed directly, through a class map of the
stored ids.

Layout under ``data_root``::

    leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png
    gtFine/<split>/<city>/<stem>_gtFine_labelIds.png

The default class map is ``cityscapes`` (the official 34 label ids onto
the 19 training classes, the others ignored); datasets written in this
layout with their own ids (``perception synth-drive --formats cityscapes``
writes ``class_map.yaml`` beside them) pass that file. An id the map does
not list stops the run naming the mask and the id.
"""
from __future__ import annotations

import os

from perception.registry import DATASETS

from .seg_dataset import DrivingSegDataset, list_pngs

IMAGE_SUFFIX = '_leftImg8bit.png'


@DATASETS.register_module()
class CityscapesDataset(DrivingSegDataset):
    """Cityscapes-layout images and id masks.

    Args:
        data_root: the folder holding ``leftImg8bit`` and ``gtFine``.
        split: 'train', 'val' or 'test'.
        mask_suffix: which masks (``_gtFine_labelIds.png``; the
            ``_gtFine_labelTrainIds.png`` of cityscapesScripts with a
            matching class map).
        class_map: built-in name, YAML path or dict; default ``cityscapes``.
        Others as in :class:`~.seg_dataset.DrivingSegDataset`.
    """

    default_class_map = 'cityscapes'
    format_name = 'Cityscapes layout'

    def __init__(self, data_root: str = '', split: str = 'train',
                 mask_suffix: str = '_gtFine_labelIds.png', class_map=None,
                 **kwargs) -> None:
        self.split, self.mask_suffix = split, mask_suffix
        super().__init__(data_root=data_root, class_map=class_map, **kwargs)

    def pairs(self):
        masks = os.path.join(self.data_root, 'gtFine', self.split)
        images = os.path.join(self.data_root, 'leftImg8bit', self.split)
        out = []
        for mask in list_pngs(masks, 'CityscapesDataset', self.mask_suffix):
            rel = os.path.relpath(mask, masks)[:-len(self.mask_suffix)]
            image = os.path.join(images, rel + IMAGE_SUFFIX)
            out.append((image if os.path.isfile(image) else None, mask,
                        image))
        return out
