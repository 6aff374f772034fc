"""Shared part of the label-map readers (BDD100K ``sem_seg`` / ``drivable``,
Cityscapes-style): pairs of an image and its label PNG, a class map of the
stored ids, the bad-sample policy.

Each sample is ``img_path``, ``seg_map_path`` and ``seg_id_map`` (stored id
-> class index); ``LoadSegMap`` in the pipeline reads the mask through the
map, so an id the map does not list stops the run naming the file and the
id. A mask without its image is an error naming both (or, with
``on_bad_sample='skip'``, counted in ``bad_samples`` and left out).
"""
from __future__ import annotations

import os
from typing import Sequence

from mmengine.logging import print_log

from perception.data import BadSampleError, PerceptionDataset

from .seg_class_map import load_seg_class_map

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


class DrivingSegDataset(PerceptionDataset):
    """Base of the label-map readers (not registered itself).

    Args:
        data_root: dataset folder.
        class_map: built-in map name, YAML path or dict
            (:func:`~.seg_class_map.load_seg_class_map`); default the
            format's own.
        pipeline: transforms (``LoadImage``, ``LoadSegMap``, ...).
        on_bad_sample: 'error' or 'skip'.
    """

    default_class_map = ''
    format_name = 'label maps'

    def __init__(self, data_root: str = '', class_map=None,
                 pipeline: Sequence = (), **kwargs) -> None:
        self.seg_class_map = load_seg_class_map(class_map or
                                                self.default_class_map)
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo.setdefault('classes', self.seg_class_map.classes)
        super().__init__(data_root=data_root, pipeline=list(pipeline),
                         metainfo=metainfo, **kwargs)

    def pairs(self) -> list[tuple[str | None, str, str]]:
        """(image path or None when missing, mask path, what was looked
        for) of every labelled sample, in a stable order."""
        raise NotImplementedError

    def load_data_list(self) -> list[dict]:
        data = []
        for image, mask, wanted in self.pairs():
            if image is None:
                exc = BadSampleError(
                    f'{mask}: no image for this label map (looked for '
                    f'{wanted}); restore the image or remove the mask')
                if self.on_bad_sample == 'error':
                    raise exc
                self.bad_samples.append(str(exc))
                print_log(f'skipping bad sample: {exc}', logger='current',
                          level=30)
                continue
            data.append(dict(img_path=image, seg_map_path=mask,
                             seg_id_map=self.seg_class_map.id_map))
        if not data:
            raise BadSampleError(
                f'{type(self).__name__}: no labelled images under '
                f'{self.data_root or "."} ({self.format_name}); check '
                'data_root and split')
        print_log(f'{type(self).__name__}: {len(data)} labelled images, '
                  f'{len(self.seg_class_map.classes)} classes (class map '
                  f'{self.seg_class_map.name})'
                  + (f', {len(self.bad_samples)} skipped'
                     if self.bad_samples else ''), logger='current')
        return data


def find_image(folder: str, stem: str) -> tuple[str | None, str]:
    """The image ``folder/stem.<jpg|jpeg|png>`` or None, and the pattern
    looked for (for messages)."""
    for ext in IMAGE_EXTENSIONS:
        path = os.path.join(folder, stem + ext)
        if os.path.isfile(path):
            return path, os.path.join(folder, stem + '.jpg|.png')
    return None, os.path.join(folder, stem + '.jpg|.png')


def list_pngs(folder: str, what: str, suffix: str = '.png') -> list[str]:
    """Sorted ``*suffix`` files of ``folder`` (recursively).

    Raises:
        FileNotFoundError: the folder does not exist (names it and what
            should be there).
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'{what}: folder {folder} does not exist; '
                                'check data_root and split')
    out = []
    for root, _, files in os.walk(folder):
        out += [os.path.join(root, f) for f in files if f.endswith(suffix)]
    return sorted(out)
