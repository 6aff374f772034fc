"""BDD100K sem_seg / drivable and Cityscapes-style label-map readers, and
the BDD100K scene-attribute reader, on small files in the real layouts
and encodings, with their error cases."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from perception.data import BadSampleError, SegLabelError
from perception_driving.datasets.bdd100k_scene import Bdd100kSceneDataset, SceneLabelError
from perception_driving.datasets.bdd100k_seg import Bdd100kSegDataset
from perception_driving.datasets.cityscapes import CityscapesDataset

PIPELINE = [dict(type='LoadImage'), dict(type='LoadSegMap'),
            dict(type='PackInputs')]


def _save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _labels(sample):
    return sample['data_samples'].gt_sem_seg.data[0].numpy()


def _bdd_sem_seg(root, values=(0, 13, 255)):
    mask = np.full((36, 64), values[0], np.uint8)
    mask[10:20, 20:40] = values[1]
    mask[:4] = values[2]
    _save(root / 'images/10k/train/7d2f7975-e0c1c5a7.jpg',
          np.zeros((36, 64, 3), np.uint8), 'JPEG')
    _save(root / 'labels/sem_seg/masks/train/7d2f7975-e0c1c5a7.png', mask)
    # the colour pictures of the release sit beside the masks
    _save(root / 'labels/sem_seg/colormaps/train/7d2f7975-e0c1c5a7.png',
          np.zeros((36, 64, 3), np.uint8))
    return mask


def test_bdd100k_sem_seg_masks_hold_train_ids(tmp_path):
    mask = _bdd_sem_seg(tmp_path)
    ds = Bdd100kSegDataset(data_root=str(tmp_path), task='sem_seg',
                           pipeline=PIPELINE)
    assert len(ds) == 1 and len(ds.metainfo['classes']) == 19
    assert ds.metainfo['classes'][13] == 'car'
    sample = ds[0]
    np.testing.assert_array_equal(_labels(sample), mask)  # 255 stays ignore
    assert sample['data_samples'].img_path.endswith('7d2f7975-e0c1c5a7.jpg')


def test_bdd100k_sem_seg_unknown_id_names_file_and_id(tmp_path):
    _bdd_sem_seg(tmp_path, values=(0, 40, 255))
    ds = Bdd100kSegDataset(data_root=str(tmp_path), pipeline=PIPELINE)
    with pytest.raises(SegLabelError, match=r'7d2f7975-e0c1c5a7\.png: label '
                       r'id\(s\) 40 not in the class map'):
        ds[0]


def test_bdd100k_colormaps_are_refused(tmp_path):
    _bdd_sem_seg(tmp_path)
    ds = Bdd100kSegDataset(data_root=str(tmp_path), pipeline=PIPELINE,
                           serialize_data=False)
    ds.data_list[0]['seg_map_path'] = str(
        tmp_path / 'labels/sem_seg/colormaps/train/7d2f7975-e0c1c5a7.png')
    with pytest.raises(SegLabelError, match='colour picture, not a label '
                       'map'):
        ds[0]


def test_bdd100k_drivable_current_and_2018_layouts(tmp_path):
    values = np.array([[0, 1, 2, 2]], np.uint8).repeat(4, axis=0)
    new, old = tmp_path / 'new', tmp_path / 'old'
    _save(new / 'images/100k/train/b1c66a42-6f7d68ca.jpg',
          np.zeros((4, 4, 3), np.uint8), 'JPEG')
    _save(new / 'labels/drivable/masks/train/b1c66a42-6f7d68ca.png', values)
    _save(old / 'images/100k/train/b1c66a42-6f7d68ca.jpg',
          np.zeros((4, 4, 3), np.uint8), 'JPEG')
    _save(old / 'drivable_maps/labels/train/'
          'b1c66a42-6f7d68ca_drivable_id.png', values)
    current = Bdd100kSegDataset(data_root=str(new), task='drivable',
                                pipeline=PIPELINE)
    assert current.metainfo['classes'] == ('direct', 'alternative',
                                           'background')
    np.testing.assert_array_equal(_labels(current[0]), values)
    legacy = Bdd100kSegDataset(data_root=str(old), task='drivable',
                               pipeline=PIPELINE)
    # 2018: 0 background, 1 direct, 2 alternative
    np.testing.assert_array_equal(_labels(legacy[0])[0], [2, 0, 1, 1])


def test_mask_without_image_is_named_or_skipped(tmp_path):
    _bdd_sem_seg(tmp_path)
    _save(tmp_path / 'labels/sem_seg/masks/train/orphan.png',
          np.zeros((4, 4), np.uint8))
    with pytest.raises(BadSampleError, match=r'orphan\.png: no image for '
                       r'this label map \(looked for .*images/10k/train/'
                       r'orphan\.jpg\|\.png\)'):
        Bdd100kSegDataset(data_root=str(tmp_path), pipeline=PIPELINE)
    ds = Bdd100kSegDataset(data_root=str(tmp_path), pipeline=PIPELINE,
                           on_bad_sample='skip', max_bad_fraction=1.0)
    assert len(ds) == 1 and len(ds.bad_samples) == 1


def test_missing_split_folder_and_bad_task(tmp_path):
    with pytest.raises(FileNotFoundError, match='labels/sem_seg/masks/val '
                       'does not exist'):
        Bdd100kSegDataset(data_root=str(tmp_path), split='val')
    with pytest.raises(ValueError, match="task must be one of sem_seg, "
                       "drivable, got 'lanes'"):
        Bdd100kSegDataset(data_root=str(tmp_path), task='lanes')


def _cityscapes(root, ids):
    stem = 'aachen_000000_000019'
    _save(root / f'leftImg8bit/train/aachen/{stem}_leftImg8bit.png',
          np.zeros(ids.shape + (3, ), np.uint8))
    _save(root / f'gtFine/train/aachen/{stem}_gtFine_labelIds.png', ids)
    # the other gtFine files of the release are not masks of this reader
    _save(root / f'gtFine/train/aachen/{stem}_gtFine_color.png',
          np.zeros(ids.shape + (3, ), np.uint8))


def test_cityscapes_label_ids_onto_train_classes(tmp_path):
    ids = np.array([[7, 7, 26, 0], [8, 24, 1, 33]], np.uint8)
    _cityscapes(tmp_path, ids)
    ds = CityscapesDataset(data_root=str(tmp_path), pipeline=PIPELINE)
    assert len(ds) == 1 and ds.metainfo['classes'][0] == 'road'
    np.testing.assert_array_equal(_labels(ds[0]),
                                  [[0, 0, 13, 255], [1, 11, 255, 18]])


def test_cityscapes_unmapped_id_names_file_and_id(tmp_path):
    _cityscapes(tmp_path, np.array([[7, 200]], np.uint8))
    ds = CityscapesDataset(data_root=str(tmp_path), pipeline=PIPELINE)
    with pytest.raises(SegLabelError, match=r'aachen_000000_000019_gtFine_'
                       r'labelIds\.png: label id\(s\) 200 not in'):
        ds[0]


def test_cityscapes_layout_with_own_class_map(tmp_path):
    _cityscapes(tmp_path, np.array([[0, 1, 255]], np.uint8))
    class_map = tmp_path / 'class_map.yaml'
    class_map.write_text(yaml.safe_dump(dict(
        classes=['road', 'lane marking'],
        ids={0: 'road', 1: 'lane marking', 255: 'ignore'})))
    ds = CityscapesDataset(data_root=str(tmp_path), class_map=str(class_map),
                           pipeline=PIPELINE)
    assert ds.metainfo['classes'] == ('road', 'lane marking')
    np.testing.assert_array_equal(_labels(ds[0]), [[0, 1, 255]])
    class_map.write_text(yaml.safe_dump(dict(
        classes=['road'], ids={0: 'road', 1: 'lane'})))
    with pytest.raises(SegLabelError, match=r"class_map\.yaml: id 1 maps to "
                       r"'lane', which is not in its classes \(road\)"):
        CityscapesDataset(data_root=str(tmp_path), class_map=str(class_map))


def test_bdd100k_scene_attributes(tmp_path):
    frames = [dict(name='a.jpg', attributes=dict(timeofday='night')),
              dict(name='b.jpg', attributes=dict(timeofday='daytime')),
              dict(name='c.jpg', attributes=dict(timeofday='undefined'))]
    ann = tmp_path / 'labels/det_20/det_train.json'
    ann.parent.mkdir(parents=True)
    ann.write_text(json.dumps(frames))
    ds = Bdd100kSceneDataset(ann_file='labels/det_20/det_train.json',
                             data_root=str(tmp_path),
                             data_prefix=dict(img='images/100k/train'))
    assert len(ds) == 2  # undefined left out (and counted in the log)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [d['gt_label'] for d in infos] == [2, 0]
    assert infos[0]['img_path'].endswith('images/100k/train/a.jpg')
    frames[0]['attributes']['timeofday'] = 'dusk'
    ann.write_text(json.dumps(frames))
    with pytest.raises(SceneLabelError, match=r"det_train\.json: frame 0 "
                       r"\(a\.jpg\) has timeofday='dusk'"):
        Bdd100kSceneDataset(ann_file=str(ann), data_root=str(tmp_path))
