"""Per-pixel classes of a synthetic drive, from the same passes that draw
its pixels: the ground pass says road, lane marking, sidewalk (curbs and
paving) or terrain (verge) and sky; every rasterised polygon writes the
class of what it belongs to (the labeled object's class through the id
buffer's object, else the scenery kind: building, pole, vegetation).

Drivable area in BDD100K's mask convention: 0 *direct* (the ego lane), 1
*alternative* (the other traffic lanes), 2 background (parking strips,
markings off the lanes, everything not road, and every object standing on
the road).

Written by :func:`write_seg_labels` as Cityscapes-style id PNGs with a
class map (``cityscapes/``), and into the BDD100K layout as ``sem_seg``
masks (Cityscapes' 19 train ids) and ``drivable`` masks.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import yaml

#: Classes of a synthetic drive's label maps, id = index.
SEG_CLASSES = ('road', 'lane marking', 'sidewalk', 'terrain', 'building',
               'pole', 'traffic light', 'traffic sign', 'vegetation', 'sky',
               'person', 'rider', 'car', 'truck', 'bus', 'motorcycle',
               'bicycle')
SEG_ID = {name: i for i, name in enumerate(SEG_CLASSES)}
UNLABELED = 255
#: BDD100K drivable-area mask values.
DIRECT, ALTERNATIVE, BACKGROUND = 0, 1, 2
DRIVABLE_CLASSES = ('direct', 'alternative', 'background')
#: Cityscapes' 19 training classes (BDD100K sem_seg ids are these indices).
CITYSCAPES_TRAIN_CLASSES = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
    'truck', 'bus', 'train', 'motorcycle', 'bicycle')
#: synthetic class -> Cityscapes train class (lane markings are road there)
TO_CITYSCAPES = {name: name for name in SEG_CLASSES}
TO_CITYSCAPES['lane marking'] = 'road'
#: unified detection class of a labeled object -> label-map class
OBJECT_CLASS = {'pedestrian': 'person', 'rider': 'rider', 'car': 'car',
                'truck': 'truck', 'bus': 'bus', 'motorcycle': 'motorcycle',
                'bicycle': 'bicycle', 'traffic light': 'traffic light',
                'traffic sign': 'traffic sign'}
#: scenery (polygons of no labeled object) by actor kind
SCENERY_CLASS = {'building': 'building', 'tree': 'vegetation'}


def tag_polys(polys: Sequence, actor) -> list:
    """Set ``cls`` (an id of :data:`SEG_CLASSES`) on an actor's polygons:
    labeled parts take their object's class, the rest the scenery class of
    the actor's kind (poles for lamps and the posts of lights and signs)."""
    scenery = SEG_ID[SCENERY_CLASS.get(actor.kind, 'pole')]
    ids = actor.object_ids()
    for poly in polys:
        if poly.obj > 0 and poly.obj in ids:
            poly.cls = SEG_ID[OBJECT_CLASS[actor.classes[ids.index(
                poly.obj)]]]
        else:
            poly.cls = scenery
    return list(polys)


def ground_classes(on_road, marking, sidewalk) -> np.ndarray:
    """Classes of ground pixels (flat boolean arrays of one length)."""
    out = np.full(len(on_road), SEG_ID['terrain'], np.uint8)
    out[sidewalk] = SEG_ID['sidewalk']
    out[on_road] = SEG_ID['road']
    out[marking & on_road] = SEG_ID['lane marking']
    return out


def ground_drivable(xr: np.ndarray, road, ego_x_rel: float) -> np.ndarray:
    """BDD100K drivable values of ground pixels at lateral road offsets
    ``xr`` (metres right of the centre line): the ego lane direct, the
    other traffic lanes alternative, the rest background."""
    lw = road.lane_width
    lanes = (xr > -road.lanes_left * lw) & (xr < road.lanes_right * lw)
    ego = np.floor(ego_x_rel / lw)
    out = np.full(len(xr), BACKGROUND, np.uint8)
    out[lanes] = ALTERNATIVE
    out[lanes & (np.floor(xr / lw) == ego)] = DIRECT
    return out


def _png(path: str, array: np.ndarray) -> None:
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def write_class_map(path: str) -> None:
    """The class map of the Cityscapes-style id PNGs a drive writes."""
    content = {'source': 'perception synth-drive label ids',
               'classes': list(SEG_CLASSES),
               'ids': {**{i: name for i, name in enumerate(SEG_CLASSES)},
                       UNLABELED: 'ignore'}}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(content, f, sort_keys=False)


def to_cityscapes_train_ids(classes: np.ndarray) -> np.ndarray:
    """Synthetic class ids -> Cityscapes train ids (BDD100K ``sem_seg``)."""
    lut = np.full(256, UNLABELED, np.uint8)
    for i, name in enumerate(SEG_CLASSES):
        lut[i] = CITYSCAPES_TRAIN_CLASSES.index(TO_CITYSCAPES[name])
    return lut[classes]


def write_cityscapes(out: str, items: Sequence[tuple[str, str, np.ndarray]],
                     place_file, city: str = 'synth') -> str:
    """Cityscapes layout: ``leftImg8bit/train/<city>/<stem>_leftImg8bit.png``
    and ``gtFine/train/<city>/<stem>_gtFine_labelIds.png`` (ids of
    :data:`SEG_CLASSES`, 255 unlabeled), ``class_map.yaml`` naming them.
    ``items`` are (stem, image path, classes)."""
    for stem, image, classes in items:
        place_file(image, os.path.join(out, 'leftImg8bit', 'train', city,
                                       f'{stem}_leftImg8bit.png'))
        _png(os.path.join(out, 'gtFine', 'train', city,
                          f'{stem}_gtFine_labelIds.png'), classes)
    write_class_map(os.path.join(out, 'class_map.yaml'))
    return out


def write_bdd100k_masks(root: str, items: Sequence[tuple], place_file
                        ) -> None:
    """BDD100K ``labels/sem_seg/masks/train/<name>.png`` (train ids, images
    in ``images/10k/train``) and ``labels/drivable/masks/train/<name>.png``
    (0 direct, 1 alternative, 2 background; images in ``images/100k``).
    ``items`` are (file name, image path, classes, drivable)."""
    for name, image, classes, drivable in items:
        stem = os.path.splitext(name)[0]
        place_file(image, os.path.join(root, 'images', '10k', 'train', name))
        _png(os.path.join(root, 'labels', 'sem_seg', 'masks', 'train',
                          f'{stem}.png'), to_cityscapes_train_ids(classes))
        _png(os.path.join(root, 'labels', 'drivable', 'masks', 'train',
                          f'{stem}.png'), drivable)
