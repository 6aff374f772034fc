"""Class maps: built-ins cover their formats, unmapped classes are errors,
the per-class table counts what went where."""
import pytest

from perception.structures import DRIVING_CLASSES
from perception_driving.datasets import (
    IGNORE_LABEL,
    ClassCounter,
    ClassMap,
    UnmappedClassError,
    builtin_class_maps,
    load_class_map,
)

KITTI = ('Car', 'Van', 'Truck', 'Pedestrian', 'Person_sitting', 'Cyclist',
         'Tram', 'Misc', 'DontCare')  # the object devkit readme's list
BDD = ('pedestrian', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
       'bicycle', 'traffic light', 'traffic sign', 'other person',
       'other vehicle', 'trailer', 'person', 'bike', 'motor', 'van',
       'caravan')
NUSCENES = (
    'animal', 'human.pedestrian.adult', 'human.pedestrian.child',
    'human.pedestrian.construction_worker',
    'human.pedestrian.personal_mobility', 'human.pedestrian.police_officer',
    'human.pedestrian.stroller', 'human.pedestrian.wheelchair',
    'movable_object.barrier', 'movable_object.debris',
    'movable_object.pushable_pullable', 'movable_object.trafficcone',
    'static_object.bicycle_rack', 'vehicle.bicycle', 'vehicle.bus.bendy',
    'vehicle.bus.rigid', 'vehicle.car', 'vehicle.construction',
    'vehicle.emergency.ambulance', 'vehicle.emergency.police',
    'vehicle.motorcycle', 'vehicle.trailer', 'vehicle.truck')


@pytest.mark.parametrize('name,sources', [
    ('kitti', KITTI), ('bdd100k', BDD), ('nuscenes', NUSCENES),
    ('nuimages', NUSCENES + ('flat.driveable_surface', 'vehicle.ego'))])
def test_builtin_maps_cover_their_format(name, sources):
    cmap = load_class_map(name)
    assert cmap.classes == DRIVING_CLASSES
    assert set(cmap.mapping) == set(sources)


def test_coco_map_has_all_80_classes():
    cmap = load_class_map('coco')
    assert len(cmap.mapping) == 80
    assert cmap.label('person', 'x') == DRIVING_CLASSES.index('pedestrian')
    assert cmap.label('toaster', 'x') is None
    assert builtin_class_maps() == ['bdd100k', 'coco', 'kitti', 'nuimages',
                                    'nuscenes']


def test_labels_ignore_drop():
    cmap = load_class_map('kitti')
    assert cmap.label('Car', 'f') == DRIVING_CLASSES.index('car')
    assert cmap.label('DontCare', 'f') == IGNORE_LABEL
    assert load_class_map({'Foo': 'drop'}).label('Foo', 'f') is None


def test_unmapped_class_names_class_file_and_map():
    with pytest.raises(UnmappedClassError) as info:
        load_class_map('kitti').label('Tractor', 'label_2/000042.txt:3')
    text = str(info.value)
    assert 'label_2/000042.txt:3' in text and "'Tractor'" in text
    assert 'kitti.yaml' in text and "'Tractor: <class>|ignore|drop'" in text


def test_yaml_file_and_custom_classes(tmp_path):
    path = tmp_path / 'mine.yaml'
    path.write_text('classes: [vehicle, person]\nmap:\n  car: vehicle\n'
                    '  ped: person\n  fog: ignore\n')
    cmap = load_class_map(str(path))
    assert cmap.classes == ('vehicle', 'person')
    assert cmap.label('ped', 'x') == 1
    bad = tmp_path / 'bad.yaml'
    bad.write_text('map:\n  car: vehicle\n')
    with pytest.raises(ValueError, match="'car' maps to unknown target "
                       "'vehicle'"):
        load_class_map(str(bad))
    with pytest.raises(FileNotFoundError, match='neither a file nor a '
                       'built-in'):
        load_class_map('no_such_map')


def test_counter_table():
    counter = ClassCounter()
    for outcome in ('kept', 'kept', 'ignored'):
        counter.add('Car', 'car', outcome)
    counter.add('Misc', 'drop', 'dropped')
    lines = counter.table('title').splitlines()
    assert lines[0] == 'title'
    assert lines[3].split() == ['Car', 'car', '2', '1', '0']
    assert lines[-1].split() == ['total', '2', '1', '1']
    assert isinstance(ClassMap({}), ClassMap)
