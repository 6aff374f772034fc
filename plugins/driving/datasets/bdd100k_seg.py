"""BDD100K label-map readers: semantic segmentation (``sem_seg``) and
drivable area (``drivable``), PNG masks parsed directly.

Layouts under ``data_root`` (the ``bdd100k`` folder)::

    labels/sem_seg/masks/<split>/<name>.png    uint8, the 19 Cityscapes
    images/10k/<split>/<name>.jpg              training ids, 255 unknown
    labels/drivable/masks/<split>/<name>.png   uint8, 0 direct,
    images/100k/<split>/<name>.jpg             1 alternative, 2 background
    drivable_maps/labels/<split>/<name>_drivable_id.png   (2018 release:
                                               0 background, 1 direct,
                                               2 alternative)

The colour pictures beside them (``colormaps/``, ``*_drivable_color.png``)
are not label maps and are refused if pointed at. Every id is checked
against the class map when the mask is loaded (``LoadSegMap``).
"""
from __future__ import annotations

import os

from perception.registry import DATASETS

from .seg_dataset import DrivingSegDataset, find_image, list_pngs

TASKS = ('sem_seg', 'drivable')


@DATASETS.register_module()
class Bdd100kSegDataset(DrivingSegDataset):
    """BDD100K ``sem_seg`` or ``drivable`` masks with their images.

    Args:
        data_root: the ``bdd100k`` folder.
        task: 'sem_seg' or 'drivable'.
        split: 'train' or 'val' (a folder name under the masks).
        class_map: default ``bdd100k_sem_seg`` / ``bdd100k_drivable``
            (``bdd100k_drivable_2018`` is chosen for the 2018 layout).
        Others as in :class:`~.seg_dataset.DrivingSegDataset`.
    """

    format_name = 'BDD100K masks'

    def __init__(self, data_root: str = '', task: str = 'sem_seg',
                 split: str = 'train', class_map=None, **kwargs) -> None:
        if task not in TASKS:
            raise ValueError(f"Bdd100kSegDataset: task must be one of "
                             f"{', '.join(TASKS)}, got {task!r}")
        self.task, self.split = task, split
        self.legacy = task == 'drivable' and not os.path.isdir(os.path.join(
            data_root, 'labels', 'drivable')) and os.path.isdir(os.path.join(
                data_root, 'drivable_maps'))
        self.default_class_map = ('bdd100k_drivable_2018' if self.legacy
                                  else f'bdd100k_{task}')
        super().__init__(data_root=data_root, class_map=class_map, **kwargs)

    def pairs(self):
        root = self.data_root
        if self.legacy:
            masks = os.path.join(root, 'drivable_maps', 'labels', self.split)
            suffix = '_drivable_id.png'
        else:
            masks = os.path.join(root, 'labels', self.task, 'masks',
                                 self.split)
            suffix = '.png'
        images = os.path.join(root, 'images',
                              '10k' if self.task == 'sem_seg' else '100k',
                              self.split)
        out = []
        for mask in list_pngs(masks, f'Bdd100kSegDataset({self.task})',
                              suffix):
            image, wanted = find_image(images,
                                       os.path.basename(mask)[:-len(suffix)])
            out.append((image, mask, wanted))
        return out
