"""Class maps of label-map formats: the id stored in each pixel -> a class
of the model, or ``ignore``.

A map is a YAML file (or a dict of that shape)::

    source: Cityscapes gtFine labelIds
    classes: [road, sidewalk, ...]     # the model's classes, label = index
    ids:
      7: road
      8: sidewalk
      0: ignore                        # pixels counted by neither loss nor metric

Every id a mask holds must be listed: an unlisted id is an error naming the
file and the id (:class:`perception.data.SegLabelError`), never a silent
relabel. Built-in maps: ``cityscapes`` (the 34 official label ids onto the
19 training classes), ``bdd100k_sem_seg`` (BDD100K's masks already hold the
19 training ids; 255 is ignore), ``bdd100k_drivable`` (0 direct, 1
alternative, 2 background) and ``bdd100k_drivable_2018`` (the 2018
``*_drivable_id.png`` release: 0 background, 1 direct, 2 alternative).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import yaml

from perception.data import SegLabelError
from perception.structures import SEG_IGNORE_INDEX

CITYSCAPES_CLASSES = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
    'truck', 'bus', 'train', 'motorcycle', 'bicycle')
#: Cityscapes label id -> training class (cityscapesScripts' labels.py);
#: the other ids 0..33 are ignored there.
_CITYSCAPES_IDS = {7: 'road', 8: 'sidewalk', 11: 'building', 12: 'wall',
                   13: 'fence', 17: 'pole', 19: 'traffic light',
                   20: 'traffic sign', 21: 'vegetation', 22: 'terrain',
                   23: 'sky', 24: 'person', 25: 'rider', 26: 'car',
                   27: 'truck', 28: 'bus', 31: 'train', 32: 'motorcycle',
                   33: 'bicycle'}
DRIVABLE_CLASSES = ('direct', 'alternative', 'background')
IGNORE = 'ignore'

BUILTIN_SEG_MAPS: dict[str, dict] = {
    'cityscapes': dict(
        source='Cityscapes gtFine *_labelIds.png', classes=CITYSCAPES_CLASSES,
        ids={i: _CITYSCAPES_IDS.get(i, IGNORE) for i in range(34)}),
    'bdd100k_sem_seg': dict(
        source='BDD100K labels/sem_seg/masks', classes=CITYSCAPES_CLASSES,
        ids={**dict(enumerate(CITYSCAPES_CLASSES)), 255: IGNORE}),
    'bdd100k_drivable': dict(
        source='BDD100K labels/drivable/masks', classes=DRIVABLE_CLASSES,
        ids=dict(enumerate(DRIVABLE_CLASSES))),
    'bdd100k_drivable_2018': dict(
        source='BDD100K 2018 drivable_maps/labels (*_drivable_id.png)',
        classes=DRIVABLE_CLASSES,
        ids={0: 'background', 1: 'direct', 2: 'alternative'}),
}


@dataclass(frozen=True)
class SegClassMap:
    """Stored id -> class index (or SEG_IGNORE_INDEX), with the classes."""

    classes: tuple[str, ...]
    id_map: dict[int, int]
    name: str


def load_seg_class_map(spec: str | Mapping | SegClassMap) -> SegClassMap:
    """A :class:`SegClassMap` from a built-in name, a YAML path or a dict.

    Raises:
        SegLabelError: the map is malformed (the message names it and the
            entry).
    """
    if isinstance(spec, SegClassMap):
        return spec
    name = '<dict>'
    if isinstance(spec, str):
        if spec in BUILTIN_SEG_MAPS:
            name, spec = spec, BUILTIN_SEG_MAPS[spec]
        elif os.path.isfile(spec):
            name = spec
            with open(spec, encoding='utf-8') as f:
                try:
                    spec = yaml.safe_load(f)
                except yaml.YAMLError as exc:
                    raise SegLabelError(f'{name}: not valid YAML ({exc})'
                                        ) from None
        else:
            raise SegLabelError(
                f'class map {spec!r} is neither a built-in map '
                f"({', '.join(sorted(BUILTIN_SEG_MAPS))}) nor a YAML file")
    if not isinstance(spec, Mapping) or not isinstance(spec.get('ids'),
                                                        Mapping):
        raise SegLabelError(f'class map {name}: expected a mapping with '
                            '`classes:` and `ids:` entries')
    classes = tuple(str(c) for c in spec.get('classes') or ())
    if not classes:
        classes = tuple(dict.fromkeys(
            str(v) for v in spec['ids'].values() if v != IGNORE))
    id_map = {}
    for key, target in spec['ids'].items():
        try:
            stored = int(key)
        except (TypeError, ValueError):
            raise SegLabelError(f'class map {name}: id {key!r} is not an '
                                'integer') from None
        if target == IGNORE:
            id_map[stored] = SEG_IGNORE_INDEX
        elif target in classes:
            id_map[stored] = classes.index(target)
        else:
            raise SegLabelError(
                f'class map {name}: id {stored} maps to {target!r}, which is '
                f"not in its classes ({', '.join(classes)}) nor 'ignore'")
    if len(classes) >= SEG_IGNORE_INDEX:
        raise SegLabelError(f'class map {name}: at most 254 classes')
    return SegClassMap(classes, id_map, name)
