"""Video display orientation: the display matrix (written with PyAV's
``set_display_rotation``) and the old ``rotate`` tag turn frames upright by
default, are recorded in ``Frame.meta`` and move the camera matrix; OpenCV's
own auto-rotation is the independent reference for pure rotations."""
import av
import cv2
import numpy as np
import pytest
from driving_fixtures import av_frame, coded_frame, frame_code

from perception.sources import open_source
from perception_driving.sources.orientation import Orientation

W, H = 128, 96


def write_rotated(path, degrees=0, hflip=False, vflip=False, tag=None, n=3):
    """``n`` coded 128x96 frames (lossless, so pictures compare exactly)
    with a display matrix, or only a ``rotate`` metadata tag."""
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, 'yuv444p'
        stream.options = {'preset': 'ultrafast', 'qp': '0'}
        if tag is not None:
            stream.metadata['rotate'] = str(tag)
        elif degrees or hflip or vflip:
            stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for i in range(n):
            for packet in stream.encode(av_frame(coded_frame(i, H, W))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def opencv_upright(path):
    capture = cv2.VideoCapture(str(path))  # auto-orientation is on
    ok, bgr = capture.read()
    capture.release()
    assert ok
    return bgr[..., ::-1]


@pytest.mark.parametrize('degrees,k', [(90, 1), (-90, 3), (180, 2)])
def test_rotation_applied_by_default_like_opencv(tmp_path, degrees, k):
    path = write_rotated(tmp_path / f'rot{degrees}.mp4', degrees)
    with open_source(path) as source:
        frames = list(source)
    stored = coded_frame(0, H, W)
    assert frames[0].image.shape == np.rot90(stored, k).shape
    diff = np.abs(frames[0].image.astype(int) - opencv_upright(path))
    assert diff.mean() < 1.0
    assert np.abs(frames[0].image.astype(int) - np.rot90(stored, k)).max() < 8
    meta = frames[0].meta
    assert meta['rotation'] == k * 90
    assert meta['orientation']['applied'] and meta['orientation']['rotation'] == k * 90
    assert [frame_code(np.rot90(f.image, -k)) for f in frames] == [0, 1, 2]


def test_keep_stored_orientation_records_it(tmp_path):
    path = write_rotated(tmp_path / 'rot.mkv', 90)
    with open_source(path, apply_rotation=False) as source:
        frame = next(iter(source))
    assert frame.image.shape == (H, W, 3)
    assert frame.meta['orientation'] == {
        'rotation': 90, 'hflip': False, 'applied': False,
        'stored_size': (W, H), 'matrix': pytest.approx(np.eye(3))}
    assert frame.meta['rotation'] == 0
    plain = write_rotated(tmp_path / 'plain.mp4')
    with open_source(plain) as source:
        assert 'orientation' not in next(iter(source)).meta


@pytest.mark.parametrize('hflip,vflip,expected', [
    (True, False, lambda im: im[:, ::-1]),
    (False, True, lambda im: im[::-1]),
    (True, False, None)])
def test_mirrors_from_the_display_matrix(tmp_path, hflip, vflip, expected):
    degrees = 0 if expected is not None else 90
    path = write_rotated(tmp_path / 'mirror.mov', degrees, hflip, vflip)
    with open_source(path) as source:
        frame = next(iter(source))
    stored = coded_frame(0, H, W)
    if expected is None:  # rotate 90 ccw, then mirror left-right
        expected = lambda im: np.rot90(im, 1)[:, ::-1]  # noqa: E731
    want = expected(stored)
    assert frame.image.shape == want.shape
    assert np.abs(frame.image.astype(int) - want).max() < 8


def test_rotate_tag_without_display_matrix(tmp_path):
    path = write_rotated(tmp_path / 'tagged.mkv', tag=90)  # clockwise
    with open_source(path) as source:
        frame = next(iter(source))
    assert frame.meta['rotation'] == 270
    want = np.rot90(coded_frame(0, H, W), -1)
    assert np.abs(frame.image.astype(int) - want).max() < 8


def test_intrinsics_follow_the_rotation(tmp_path):
    K = np.array([[100.0, 0, 60.5], [0, 110.0, 40.25], [0, 0, 1]])
    path = write_rotated(tmp_path / 'rot.mp4', 90)
    with open_source(path, intrinsics=K) as source:
        frame = next(iter(source))
    Kr = frame.meta['intrinsics']
    # 90 degrees counter-clockwise: x' = y, y' = (W - 1) - x (pixel centres)
    np.testing.assert_allclose(
        Kr, [[110, 0, 40.25], [0, 100, W - 1 - 60.5], [0, 0, 1]], atol=1e-4)
    # A 3-D point lands on the same displayed pixel either way.
    orient = Orientation(90)
    X = np.array([0.3, -0.2, 2.0])
    p = K @ X
    p = p / p[2]
    centre = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    step = np.linalg.inv(centre) @ orient.matrix(W, H) @ centre
    q = Kr @ (orient.camera_rotation() @ X)
    np.testing.assert_allclose((step @ p)[:2], (q / q[2])[:2], atol=1e-3)
    with open_source(path, intrinsics=K, apply_rotation=False) as source:
        np.testing.assert_allclose(next(iter(source)).meta['intrinsics'], K)
    with pytest.raises(ValueError, match='3x3'):
        open_source(path, intrinsics=np.eye(2))


def test_opencv_backend_records_the_same_rotation(tmp_path):
    path = write_rotated(tmp_path / 'rot.mp4', -90)
    with open_source(path, backend='opencv') as source:
        frame = next(iter(source))
    with open_source(path) as source:
        reference = next(iter(source))
    assert frame.meta['rotation'] == reference.meta['rotation'] == 270
    assert np.abs(frame.image.astype(int) - reference.image).mean() < 1.0
    with open_source(path, backend='opencv', apply_rotation=False) as source:
        assert next(iter(source)).image.shape == (H, W, 3)
