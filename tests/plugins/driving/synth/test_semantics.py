"""Label maps of synthetic drives: object pixels carry their object's class
(the id buffer agrees), the ground and sky are what the ground pass drew,
the drivable area is road, and the files are written in the Cityscapes and
BDD100K layouts, byte-identical for the same seed."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from perception_driving.synth.drive import generate_drive
from perception_driving.synth.ground import Textures
from perception_driving.synth.populate import build_scene
from perception_driving.synth.render import render_view
from perception_driving.synth.scene import make_rig
from perception_driving.synth.semantics import (
    CITYSCAPES_TRAIN_CLASSES,
    OBJECT_CLASS,
    SEG_CLASSES,
    SEG_ID,
)


@pytest.fixture(scope='module')
def view_and_scene():
    scene = build_scene(4, 3, 10.0, 'day', 'clear')
    cam = make_rig(1, 320, 180)[0]
    return render_view(scene, cam, 1, Textures(scene)), scene


def test_object_pixels_carry_their_objects_class(view_and_scene):
    view, scene = view_and_scene
    objects = scene.objects()
    visible = np.unique(view.ids[view.ids > 0])
    assert len(visible) >= 3
    for oid in visible:
        expected = SEG_ID[OBJECT_CLASS[objects[int(oid)][0]]]
        assert (view.classes[view.ids == oid] == expected).all(), oid
    # and no object class where no labeled object is visible
    object_ids = [SEG_ID[c] for c in set(OBJECT_CLASS.values())
                  if c not in ('traffic light', 'traffic sign')]
    assert not np.isin(view.classes[view.ids == 0], object_ids).any()


def test_ground_sky_and_drivable_area(view_and_scene):
    view, _ = view_and_scene
    classes, drivable = view.classes, view.drivable
    assert (classes != 255).all()  # every pixel has a class
    sky = classes == SEG_ID['sky']
    assert np.isinf(view.depth[sky]).all() and sky[0].mean() > 0.2
    assert (classes == SEG_ID['road']).sum() > 2000
    assert (classes == SEG_ID['lane marking']).sum() > 50
    # drivable pixels are road surface, the ego lane fills the bottom centre
    on_lanes = drivable < 2
    assert np.isin(classes[on_lanes], [SEG_ID['road'],
                                       SEG_ID['lane marking']]).all()
    assert drivable[-1, 160] == 0 and (drivable == 1).sum() > 500


def test_written_masks_in_cityscapes_and_bdd100k_layouts(tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f'd{k}'
        generate_drive(str(out), seed=9, frames=2, size=(160, 96),
                       formats=('bdd100k', 'cityscapes'))
        outs.append(out)
    city = outs[0] / 'cityscapes'
    ids = np.array(Image.open(city / 'gtFine/train/synth/'
                              '000001_gtFine_labelIds.png'))
    assert ids.dtype == np.uint8 and ids.shape == (96, 160)
    assert (city / 'leftImg8bit/train/synth/000001_leftImg8bit.png').is_file()
    class_map = yaml.safe_load((city / 'class_map.yaml').read_text())
    assert class_map['classes'] == list(SEG_CLASSES)
    assert set(np.unique(ids)) <= set(class_map['ids'])
    bdd = outs[0] / 'bdd100k'
    train_ids = np.array(Image.open(bdd / 'labels/sem_seg/masks/train/'
                                    '000001.png'))
    road = CITYSCAPES_TRAIN_CLASSES.index('road')
    marking = ids == SEG_ID['lane marking']
    assert marking.any() and (train_ids[marking] == road).all()
    assert (train_ids <= 18).all()
    drivable = np.array(Image.open(bdd / 'labels/drivable/masks/train/'
                                   '000001.png'))
    assert set(np.unique(drivable)) == {0, 1, 2}
    assert (bdd / 'images/10k/train/000001.png').is_file()
    for rel in ('cityscapes/gtFine/train/synth/000000_gtFine_labelIds.png',
                'bdd100k/labels/drivable/masks/train/000000.png'):
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes()
