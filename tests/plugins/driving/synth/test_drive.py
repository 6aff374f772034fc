"""Synthetic drives: every written format read back by the project's own
readers and sources, reproducibility, ignore regions from the geometry."""
import json
import math
import os

import numpy as np
import pytest

pytest.importorskip('av')
pytest.importorskip('rosbags')

from perception.sources import FrameSet, open_source  # noqa: E402
from perception.structures import DRIVING_CLASSES  # noqa: E402
from perception_driving.commands import SynthDriveCommand  # noqa: E402
from perception_driving.synth import (  # noqa: E402
    Actor,
    Textures,
    build_scene,
    compute_labels,
    finish,
    make_rig,
    render_drive,
    render_view,
    write_drive,
)

FRAMES, FPS, SIZE, SEED = 4, 10.0, (320, 192), 3


@pytest.fixture(scope='module')
def drive_dir(tmp_path_factory):
    """A small two-camera drive written by the ``synth-drive`` command."""
    out = tmp_path_factory.mktemp('drive') / 'out'
    rc = SynthDriveCommand().main([
        str(out), '--seed', str(SEED), '--frames', str(FRAMES), '--size',
        *map(str, SIZE), '--cameras', '2', '--fps', str(FPS)])
    assert rc == 0
    return out


def generated(out, camera='front'):
    with open(os.path.join(out, 'labels', f'{camera}.json')) as f:
        return json.load(f)


def expected_arrays(frame_labels):
    boxes = np.array([o['bbox'] for o in frame_labels['objects']],
                     np.float32).reshape(-1, 4)
    labels = np.array([DRIVING_CLASSES.index(o['category'])
                       for o in frame_labels['objects']], np.int64)
    ignore = np.array([o['ignore'] for o in frame_labels['objects']], bool)
    return boxes, labels, ignore


def test_drive_has_every_kind_of_object(drive_dir):
    summary = json.loads((drive_dir / 'drive.json').read_text())
    assert summary['frames'] == FRAMES and summary['cameras'] == [
        'front', 'front_left']
    seen = {o['category'] for fl in generated(drive_dir) for o in
            fl['objects']}
    assert {'car', 'pedestrian', 'traffic light', 'traffic sign'} <= seen
    for fl in generated(drive_dir):
        for o in fl['objects']:
            x1, y1, x2, y2 = o['bbox']
            assert 0 <= x1 < x2 <= SIZE[0] and 0 <= y1 < y2 <= SIZE[1]
            assert all(v == int(v) for v in o['bbox'])   # pixel edges


def test_kitti_read_back(drive_dir):
    from perception_driving.datasets import KittiDataset
    ds = KittiDataset(data_root=str(drive_dir / 'kitti' / 'training'),
                      class_map=str(drive_dir / 'kitti' / 'class_map.yaml'))
    assert len(ds) == FRAMES
    for i, fl in enumerate(generated(drive_dir)):
        info = ds.get_data_info(i)
        boxes, labels, ignore = expected_arrays(fl)
        np.testing.assert_array_equal(info['gt_bboxes'], boxes)
        np.testing.assert_array_equal(info['gt_ignore_flags'], ignore)
        # DontCare carries no class: ignore regions come back as label -1.
        np.testing.assert_array_equal(info['gt_labels'],
                                      np.where(ignore, -1, labels))
        np.testing.assert_allclose(info['intrinsics'], fl['intrinsics'],
                                   rtol=1e-6)


def test_bdd100k_read_back(drive_dir):
    from perception_driving.datasets import Bdd100kDataset
    ds = Bdd100kDataset(data_root=str(drive_dir / 'bdd100k'),
                        ann_file='labels/det_20/det_train.json')
    assert len(ds) == FRAMES
    for i, fl in enumerate(generated(drive_dir)):
        info = ds.get_data_info(i)
        boxes, labels, ignore = expected_arrays(fl)
        np.testing.assert_array_equal(info['gt_bboxes'], boxes)
        np.testing.assert_array_equal(info['gt_labels'], labels)
        crowd = [a['crowd'] for a in info['instance_attributes']]
        np.testing.assert_array_equal(crowd, ignore)
        assert info['timestamp_ns'] == fl['timestamp_ns'] // 10**6 * 10**6
        assert info['timeofday'] == 'daytime'


def test_coco_read_back(drive_dir):
    from perception_driving.datasets import CocoDetDataset
    ds = CocoDetDataset(data_root=str(drive_dir / 'coco'),
                        ann_file='annotations/instances.json',
                        img_dir='images', class_map=None)
    assert tuple(ds.metainfo['classes']) == DRIVING_CLASSES
    for i, fl in enumerate(generated(drive_dir)):
        info = ds.get_data_info(i)
        boxes, labels, ignore = expected_arrays(fl)
        np.testing.assert_array_equal(info['gt_bboxes'], boxes)
        np.testing.assert_array_equal(info['gt_labels'], labels)
        np.testing.assert_array_equal(info['gt_ignore_flags'], ignore)


def test_nuimages_read_back(drive_dir):
    from perception_driving.datasets import NuImagesDataset
    ds = NuImagesDataset(data_root=str(drive_dir / 'nuimages'),
                         class_map=str(drive_dir / 'nuimages' /
                                       'class_map.yaml'))
    assert len(ds) == 2 * FRAMES
    channels = {'CAM_FRONT': 'front', 'CAM_FRONT_LEFT': 'front_left'}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        fl = generated(drive_dir, channels[info['camera']])[
            int(os.path.basename(info['img_path'])[:6])]
        boxes, labels, ignore = expected_arrays(fl)
        np.testing.assert_array_equal(info['gt_bboxes'], boxes)
        np.testing.assert_array_equal(info['gt_labels'], labels)
        np.testing.assert_array_equal(
            ['synthetic.ignore' in a for a in info['instance_attributes']],
            ignore)
        assert info['timestamp_ns'] == fl['timestamp_ns'] // 1000 * 1000
        np.testing.assert_allclose(info['intrinsics'], fl['intrinsics'],
                                   rtol=1e-6)


def _png(drive_dir, camera, i):
    from PIL import Image
    return np.asarray(Image.open(drive_dir / 'images' / camera /
                                 f'{i:06d}.png'))


def test_image_folder_with_sidecar_timestamps(drive_dir):
    stamps = [fl['timestamp_ns'] for fl in generated(drive_dir)]
    with open_source(str(drive_dir / 'images' / 'front')) as src:
        frames = list(src)
    assert [f.timestamp_ns for f in frames] == stamps
    assert all(f.meta['clock'] == 'sidecar' for f in frames)
    assert frames[1].image.shape == (SIZE[1], SIZE[0], 3)


def test_video_read_back(drive_dir):
    with open_source(str(drive_dir / 'video' / 'front.mp4')) as src:
        frames = list(src)
    assert len(frames) == FRAMES
    assert [f.timestamp_ns for f in frames] == [
        int(round(i * 1e9 / FPS)) for i in range(FRAMES)]
    assert frames[0].meta['clock'] == 'pts'
    diff = np.abs(frames[2].image.astype(int) - _png(drive_dir, 'front', 2))
    assert diff.mean() < 4.0      # H.264 + 4:2:0 chroma, not a pixel shift


def test_bag_read_back(drive_dir):
    stamps = [fl['timestamp_ns'] for fl in generated(drive_dir)]
    with open_source(str(drive_dir / 'bag'), topic='/front/image_raw') as s:
        raw = list(s)
    assert [f.timestamp_ns for f in raw] == stamps
    assert raw[0].meta['clock'] == 'header'
    np.testing.assert_array_equal(raw[3].image, _png(drive_dir, 'front', 3))
    with open_source(str(drive_dir / 'bag'),
                     topic='/front_left/image_raw/compressed') as s:
        jpeg = list(s)
    assert [f.timestamp_ns for f in jpeg] == stamps
    diff = np.abs(jpeg[0].image.astype(int) - _png(drive_dir, 'front_left',
                                                   0))
    assert diff.mean() < 4.0


def test_rig_synchronises(drive_dir):
    with open_source(str(drive_dir / 'rig.rig.yaml')) as src:
        sets = list(src)
    assert len(sets) == FRAMES
    K = generated(drive_dir, 'front_left')[0]['intrinsics']
    for i, fs in enumerate(sets):
        assert isinstance(fs, FrameSet)
        assert set(fs.frames) == {'front', 'front_left'}
        assert {f.timestamp_ns for f in fs.frames.values()} == {
            fs.timestamp_ns} == {int(round(i * 1e9 / FPS))}
        np.testing.assert_allclose(fs.frames['front_left'].meta['intrinsics'],
                                   K)
    assert not src.stats.get('incomplete') and not src.stats.get('dropped')


def test_same_seed_same_drive(tmp_path):
    a = render_drive(7, 2, (160, 96), 1, 'dusk', 'rain')
    b = render_drive(7, 2, (160, 96), 1, 'dusk', 'rain')
    fmts = ('kitti', 'bdd100k', 'coco', 'nuimages')
    write_drive(a, str(tmp_path / 'a'), fmts)
    write_drive(b, str(tmp_path / 'b'), fmts)
    for rel in ('labels/front.json', 'kitti/training/label_2/000001.txt',
                'bdd100k/labels/det_20/det_train.json',
                'coco/annotations/instances.json',
                'nuimages/v1.0-mini/object_ann.json'):
        assert (tmp_path / 'a' / rel).read_bytes() == \
            (tmp_path / 'b' / rel).read_bytes(), rel
    for x, y in zip(a.images['front'], b.images['front']):
        assert np.abs(x.astype(int) - y).max() <= 2
    c = render_drive(8, 2, (160, 96), 1, 'dusk', 'rain')
    assert np.abs(c.images['front'][0].astype(int)
                  - a.images['front'][0]).mean() > 5   # another seed


def _staged(actors, lighting='day'):
    """A scene holding only ``actors`` (plus nothing else) on the road."""
    scene = build_scene(0, 1, 10.0, lighting, 'clear')
    scene.road.amplitude = 0.0
    scene.actors = actors
    return scene


def _car(i, s, x, dims=(1.8, 1.45, 4.6)):
    return Actor(i, 'car', s, x, dims=dims, color=(0.6, 0.1, 0.1),
                 params={'style': 'sedan', 'brake': False,
                         'cargo': (0.5, 0.5, 0.5)})


def _labels(scene, size=(640, 360)):
    cam = make_rig(1, *size)[0]
    tex = Textures(scene)
    view = render_view(scene, cam, 0, tex)
    labels = compute_labels(scene, cam, view, 0)
    return {o.obj_id: o for o in labels.objects}, view, finish(
        scene, cam, view, tex, 0)


def test_ignore_regions_for_tiny_and_occluded_objects():
    lane = 5.25
    near, hidden, far = (_car(1, 15, lane), _car(2, 24, lane + 0.6),
                         _car(3, 120, -8.0))
    scene = _staged([near, hidden, far])
    scene.ego_x_rel = lane
    labels, view, image = _labels(scene)
    n, h, f = (labels[a.object_ids()[0]] for a in (near, hidden, far))
    assert n.occlusion == 0.0 and n.truncation == 0.0 and not n.ignore
    # The near car's box is exactly its pixels in the id buffer.
    ys, xs = np.nonzero(view.ids == near.object_ids()[0])
    assert n.bbox == (xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0)
    assert h.occlusion > 0.8 and h.ignore          # behind the near car
    assert f.bbox[3] - f.bbox[1] < 10 and f.ignore and f.occlusion < 0.2
    # Pixels agree with labels: the near car's box is not road-grey.
    x1, y1, x2, y2 = map(int, n.bbox)
    assert image[y1:y2, x1:x2].std() > 10


def test_truncated_object_at_the_image_edge():
    car = _car(1, 8, 0.0)      # close, two lanes to the left of the ego
    scene = _staged([car])
    scene.ego_x_rel = 5.25
    labels, _, _ = _labels(scene)
    label = labels[car.object_ids()[0]]
    assert label.bbox[0] == 0.0 and 0.05 < label.truncation < 0.95
    assert label.location[2] == pytest.approx(8 - 1.6, abs=0.05)
    assert math.isclose(label.dims[0], 1.45)


@pytest.mark.parametrize('lighting,weather', [('night', 'clear'),
                                              ('day', 'fog')])
def test_lighting_and_weather_change_pixels_not_labels(lighting, weather):
    day = render_drive(2, 1, (160, 96), 1, 'day', 'clear')
    other = render_drive(2, 1, (160, 96), 1, lighting, weather)
    assert [o.bbox for o in day.labels['front'][0].objects] == \
        [o.bbox for o in other.labels['front'][0].objects]
    mean = other.images['front'][0].mean()
    assert (mean < day.images['front'][0].mean() - 30 if lighting == 'night'
            else other.images['front'][0].std()
            < day.images['front'][0].std())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='lighting'):
        render_drive(0, 1, (64, 64), 1, 'noon')
    with pytest.raises(ValueError, match='cameras'):
        render_drive(0, 1, (64, 64), 4)
    with pytest.raises(ValueError, match='unknown format'):
        write_drive(render_drive(0, 1, (64, 64)), '/tmp/unused', ['png'])


def test_a_folder_with_files_is_not_written_over(tmp_path, capsys):
    (tmp_path / 'my_labels.txt').write_text('keep me')
    status = SynthDriveCommand().main([str(tmp_path), '--frames', '1',
                                       '--size', '64', '48', '--cameras',
                                       '1', '--formats', 'kitti'])
    assert status == 2
    assert 'not empty' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ['my_labels.txt']
    assert SynthDriveCommand().main([str(tmp_path), '--frames', '1',
                                     '--size', '64', '48', '--cameras', '1',
                                     '--formats', 'kitti',
                                     '--overwrite']) == 0
    assert (tmp_path / 'my_labels.txt').read_text() == 'keep me'
    assert (tmp_path / 'kitti').is_dir()


def test_kitti_3d_box_projects_onto_the_2d_box():
    car = _car(1, 14, 3.0)
    car.heading = 0.4          # parked at an angle: yaw matters
    scene = _staged([car])
    scene.ego_x_rel = 5.25
    labels, view, _ = _labels(scene)
    label = labels[car.object_ids()[0]]
    h, w, length = label.dims
    ry = label.rotation_y
    # KITTI devkit corners: x along the length, y up from the bottom centre.
    x = length / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    y = -h * np.array([0, 0, 0, 0, 1, 1, 1, 1])
    z = w / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    R = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0],
                  [-math.sin(ry), 0, math.cos(ry)]])
    corners = R @ np.stack([x, y, z]) + np.reshape(label.location, (3, 1))
    K = np.array(make_rig(1, 640, 360)[0].K)
    uv = K @ corners
    uv = uv[:2] / uv[2]
    box3 = [uv[0].min() + 0.5, uv[1].min() + 0.5, uv[0].max() + 0.5,
            uv[1].max() + 0.5]     # pixel centres -> pixel edges
    x1, y1, x2, y2 = label.bbox
    assert box3[0] - 2 <= x1 and box3[1] - 2 <= y1
    assert x2 <= box3[2] + 2 and y2 <= box3[3] + 2
    inter = (min(x2, box3[2]) - max(x1, box3[0])) * (
        min(y2, box3[3]) - max(y1, box3[1]))
    union = (x2 - x1) * (y2 - y1) + (box3[2] - box3[0]) * (
        box3[3] - box3[1]) - inter
    assert inter / union > 0.8
