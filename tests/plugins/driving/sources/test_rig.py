"""Rigs: two cameras with offset clocks synchronised within tolerance,
incomplete-set policies, undistortion against OpenCV, calibration parsing
and errors."""
import cv2
import numpy as np
import pytest
from driving_fixtures import camera_yaml, frame_code, write_image_folder, write_rig, write_video

from perception.sources import FrameSet, open_source
from perception_driving.sources import RigError, RigSource, load_rig

EPOCH = 1_700_000_000_000_000_000  # the left camera's clock
JITTER_MS = [3, -2, 4, 1, -4, 2, 0, -3, 9, 1]  # frame 8 is 9 ms late


@pytest.fixture
def two_cameras(tmp_path):
    """front: 10 coded frames, H.264 at 10 fps (pts from 0); left: the same
    scene numbers as PNGs stamped on another clock with jitter, frame 5
    missing."""
    write_video(tmp_path / 'front.mp4', n=10, fps=10)
    times = [EPOCH + i * 100_000_000 + j * 1_000_000
             for i, j in enumerate(JITTER_MS)]
    left = write_image_folder(tmp_path / 'left', n=10, times_ns=times,
                              size=(64, 48))
    (left / '000005.png').unlink()
    lines = (left / 'timestamps.csv').read_text().splitlines()
    (left / 'timestamps.csv').write_text('\n'.join(
        ln for ln in lines if not ln.startswith('000005')) + '\n')
    cameras = {'front': camera_yaml('front.mp4', 128, 96),
               'left': camera_yaml('left', 64, 48, time_offset_ns=-EPOCH)}
    return tmp_path, cameras


def test_offset_clocks_synchronised_within_tolerance(two_cameras):
    folder, cameras = two_cameras
    rig = write_rig(folder / 'car.rig.yaml', cameras, name='car',
                    sync={'tolerance_ms': 5, 'reference': 'front',
                          'incomplete': 'drop'})
    with open_source(rig) as source:
        assert isinstance(source, RigSource)
        sets = list(source)
    assert all(isinstance(s, FrameSet) for s in sets)
    # Frame 5 is missing on the left, frame 8 is 9 ms late: both dropped.
    numbers = [frame_code(s.frames['front'].image) for s in sets]
    assert numbers == [0, 1, 2, 3, 4, 6, 7, 9]
    for s in sets:
        left = s.frames['left']
        assert frame_code(left.image) == frame_code(s.frames['front'].image)
        assert abs(left.timestamp_ns - s.timestamp_ns) <= 5_000_000
        assert left.meta['camera_timestamp_ns'] == left.timestamp_ns + EPOCH
        assert left.camera == 'left' and left.meta['rig'] == 'car'
    assert source.stats['incomplete'] == 2
    partial = [e.detail for e in source.events if e.kind == 'partial']
    assert len(partial) == 2 and all('left' in d and 'dropped' in d
                                     for d in partial)
    # The late frame matched nothing and is counted, not silently lost.
    assert source.stats['dropped'] == 1


def test_partial_policy_and_tolerance_override(two_cameras):
    folder, cameras = two_cameras
    rig = write_rig(folder / 'car.yaml', cameras,
                    sync={'tolerance_ms': 5, 'incomplete': 'partial'})
    with open_source(rig) as source:
        sets = list(source)
    assert len(sets) == 10
    assert [s.meta['missing'] for s in sets if s.meta['missing']] == [
        ['left'], ['left']]
    assert set(sets[5].frames) == {'front'}
    with open_source(rig, tolerance_ms=10, incomplete='drop') as source:
        sets = list(source)
    assert len(sets) == 9 and not source.stats.get('dropped')


def test_calibration_in_frame_meta(two_cameras):
    folder, cameras = two_cameras
    cameras['left']['extrinsics'] = {
        'translation': [1.5, 0.0, 1.4],
        # The same rotation as the front camera's matrix, as a quaternion.
        'quaternion_wxyz': [0.5, -0.5, 0.5, -0.5]}
    rig = write_rig(folder / 'car.rig.yaml', cameras)
    with open_source(rig) as source:
        first = next(iter(source))
    front, left = first.frames['front'], first.frames['left']
    np.testing.assert_allclose(left.meta['extrinsics'],
                               front.meta['extrinsics'], atol=1e-12)
    T = front.meta['extrinsics']
    # The optical axis (camera z) points along the vehicle's x, forward.
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], [1, 0, 0])
    np.testing.assert_allclose(T[:3, 3], [1.5, 0.0, 1.4])
    np.testing.assert_allclose(front.meta['intrinsics'],
                               [[115.2, 0, 63.5], [0, 115.2, 47.5], [0, 0, 1]])
    assert front.meta['distortion']['model'] == 'plumb_bob'


@pytest.mark.parametrize('undistort', [True, {'alpha': 0.0},
                                       {'alpha': 1.0}])
def test_undistortion_equals_opencv(two_cameras, undistort):
    folder, cameras = two_cameras
    rig = write_rig(folder / 'car.rig.yaml', cameras, undistort=undistort)
    spec = load_rig(rig)
    with open_source(rig) as source:
        frames = next(iter(source)).frames
    with open_source(folder / 'front.mp4') as video:
        original = next(iter(video)).image
    front = frames['front']
    cam = spec.cameras['front']
    assert front.meta['undistorted'] is True
    np.testing.assert_array_equal(front.meta['raw_intrinsics'], cam.K)
    new_K = front.meta['intrinsics']
    if undistort is True:
        np.testing.assert_array_equal(new_K, cam.K)
    else:
        expected, _ = cv2.getOptimalNewCameraMatrix(
            cam.K, cam.coeffs, (128, 96), undistort['alpha'])
        np.testing.assert_allclose(new_K, expected)
    reference = cv2.undistort(original, cam.K, cam.coeffs,
                              newCameraMatrix=new_K)
    assert np.abs(front.image.astype(int) - reference).max() <= 1


def test_fisheye_undistortion_equals_opencv(tmp_path):
    write_video(tmp_path / 'fish.mp4', n=2, fps=10)
    coeffs = [0.05, -0.01, 0.002, -0.001]
    rig = write_rig(tmp_path / 'fish.rig.yaml', {'fish': camera_yaml(
        'fish.mp4', 128, 96, distortion={'model': 'equidistant',
                                         'coeffs': coeffs})}, undistort=True)
    with open_source(rig) as source:
        frame = next(iter(source)).frames['fish']
    with open_source(tmp_path / 'fish.mp4') as video:
        original = next(iter(video)).image
    K = load_rig(rig).cameras['fish'].K
    reference = cv2.fisheye.undistortImage(original, K, np.array(coeffs),
                                           Knew=K)
    assert np.abs(frame.image.astype(int) - reference).max() <= 1


@pytest.mark.parametrize('change,match', [
    ({'width': None}, r'cameras\.front\.width: the calibrated image size'),
    ({'distortion': {'model': 'kannala', 'coeffs': []}},
     r"cameras\.front\.distortion\.model: unknown model 'kannala'"),
    ({'distortion': {'model': 'plumb_bob', 'coeffs': [1, 2, 3]}},
     r'plumb_bob takes \(4, 5, 8, 12, 14\) coefficients, got 3'),
    ({'extrinsics': {'rotation_matrix': [[1, 0, 0], [0, 1, 0], [0, 0, -1]]}},
     r'cameras\.front\.extrinsics: the rotation is not orthonormal with '
     r'det \+1'),
    ({'intrinsics': {'fx': 100, 'fy': 100, 'cx': 1}}, r'missing cy'),
    ({'source': None}, r"cameras\.front: each camera needs 'source:'"),
])
def test_bad_rig_files_name_the_field(tmp_path, change, match):
    cam = camera_yaml('front.mp4', 128, 96)
    for key, value in change.items():
        if value is None:
            cam.pop(key)
        else:
            cam[key] = value
    rig = write_rig(tmp_path / 'bad.rig.yaml', {'front': cam})
    with pytest.raises(RigError, match=match) as info:
        load_rig(rig)
    assert 'bad.rig.yaml' in str(info.value) and 'docs/rig.md' in str(
        info.value)


def test_bad_references_sources_and_sizes(two_cameras):
    folder, cameras = two_cameras
    rig = write_rig(folder / 'a.rig.yaml', cameras,
                    sync={'reference': 'rear'})
    with pytest.raises(RigError, match=r"sync\.reference: 'rear' is not a "
                       'camera; cameras: front, left'):
        open_source(rig)
    cameras['left']['source'] = 'nowhere.mp4'
    rig = write_rig(folder / 'b.rig.yaml', cameras)
    with pytest.raises(RigError, match=r'cameras\.left\.source: .*nowhere\.'
                       r'mp4: video file does not exist'):
        open_source(rig)
    cameras['left'] = camera_yaml('front.mp4', 640, 480)
    rig = write_rig(folder / 'c.rig.yaml', cameras)
    with pytest.raises(RigError, match=r'cameras\.left: frame 0 is 128x96 '
                       'but the calibration is for 640x480'):
        list(open_source(rig))


def test_only_yaml_with_cameras_is_a_rig(tmp_path):
    from perception_driving.sources import RigOpener
    (tmp_path / 'other.yaml').write_text('classes: [car, bus]\n')
    (tmp_path / 'cams.yml').write_text('cameras: {}\n')
    opener = RigOpener()
    assert not opener.can_open(str(tmp_path / 'other.yaml'))
    assert opener.can_open(str(tmp_path / 'cams.yml'))
    assert opener.can_open(str(tmp_path / 'missing.rig.yaml'))
    with pytest.raises(RigError, match='rig file does not exist'):
        open_source(tmp_path / 'missing.rig.yaml')
