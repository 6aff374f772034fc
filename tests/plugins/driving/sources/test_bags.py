"""ROS 1 and ROS 2 bags written with rosbags: raw RGB, 16-bit mono, Bayer
(all four patterns, 8 and 16 bit), compressed images, topic selection,
header stamps, padded rows and bad input."""
import numpy as np
import pytest
from driving_fixtures import (
    coded_frame,
    frame_code,
    image_message,
    mosaic_rggb,
    stripes_are_rgb,
    write_bag,
)

from perception.sources import SourceError, open_source
from perception_driving.sources import BagSource, decode_image_message

T0 = 1_700_000_000_123_456_789
RGB = coded_frame(5, 48, 64)
MONO16 = (RGB.mean(-1) * 257).astype(np.uint16)


def smooth_rgb(height=32, width=48, depth=np.uint8):
    """A smooth colour image: debayering reproduces it closely."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([40 + 4 * xs, 60 + 5 * ys, 200 - 2 * xs - ys], -1)
    scale = 257 if depth == np.uint16 else 1
    return (rgb * scale).astype(depth)


def all_kinds():
    stamp = lambda k, i: T0 + k * 1000 + i * 100_000_000  # noqa: E731
    return {
        '/cam/rgb': [image_message(stamp(0, i), coded_frame(i, 48, 64),
                                   'rgb8') for i in range(3)],
        '/cam/bgr': [image_message(stamp(1, 0), RGB[..., ::-1].copy(),
                                   'bgr8', pad=16)],
        '/cam/mono16': [image_message(stamp(2, 0), MONO16, 'mono16')],
        '/cam/bayer': [image_message(stamp(3, 0), mosaic_rggb(RGB),
                                     'bayer_rggb8')],
        '/cam/jpeg': [image_message(stamp(4, i), coded_frame(i, 48, 64),
                                    'jpeg') for i in range(2)],
        '/cam/png16': [image_message(stamp(5, 0), MONO16, 'png')],
    }


@pytest.fixture(scope='module', params=['ros1', 'ros2'])
def bag(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    name = 'drive.bag' if request.param == 'ros1' else 'drive_ros2'
    return write_bag(folder / name, request.param, all_kinds())


def read(bag, topic, **options):
    with open_source(bag, topic=topic, **options) as source:
        assert isinstance(source, BagSource)
        return list(source), source


def test_raw_rgb_with_header_stamps(bag):
    frames, source = read(bag, '/cam/rgb')
    assert [frame_code(f.image) for f in frames] == [0, 1, 2]
    assert all(stripes_are_rgb(f.image) for f in frames)
    assert [f.timestamp_ns for f in frames] == [T0 + i * 100_000_000
                                                for i in range(3)]
    assert frames[0].meta['clock'] == 'header'
    assert frames[0].meta['log_time_ns'] == T0 + 1_000_000
    assert frames[0].camera == '/cam/rgb'
    assert source.events[-1].kind == 'eos'
    strided, _ = read(bag, '/cam/rgb', stride=2)
    assert [(f.index, frame_code(f.image)) for f in strided] == [(0, 0),
                                                                 (2, 2)]


def test_bgr_with_padded_rows(bag):
    (frame, ), _ = read(bag, '/cam/bgr')
    np.testing.assert_array_equal(frame.image, RGB)


def test_sixteen_bit_mono(bag):
    (frame, ), _ = read(bag, '/cam/mono16')
    assert frame.image.dtype == np.uint8 and frame.image.shape == (48, 64, 3)
    assert frame_code(frame.image) == 5
    (raw, ), _ = read(bag, '/cam/mono16', raw=True)
    np.testing.assert_array_equal(raw.image, MONO16)


def test_bayer_is_debayered_to_rgb(bag):
    (frame, ), _ = read(bag, '/cam/bayer')
    assert frame.image.shape == (48, 64, 3)
    assert frame_code(frame.image) == 5 and stripes_are_rgb(frame.image)


def test_compressed_jpeg_and_png16(bag):
    frames, _ = read(bag, '/cam/jpeg', camera='front')
    assert [frame_code(f.image) for f in frames] == [0, 1]
    assert all(stripes_are_rgb(f.image) and f.camera == 'front'
               for f in frames)
    (raw, ), _ = read(bag, '/cam/png16', raw=True)
    np.testing.assert_array_equal(raw.image, MONO16)


def test_several_topics_in_record_order(bag):
    frames, _ = read(bag, ['/cam/rgb', '/cam/jpeg'])
    assert [(f.camera, frame_code(f.image)) for f in frames] == [
        ('/cam/rgb', 0), ('/cam/jpeg', 0), ('/cam/rgb', 1), ('/cam/jpeg', 1),
        ('/cam/rgb', 2)]


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
@pytest.mark.parametrize('depth', [8, 16])
def test_every_bayer_pattern_matches_the_scene(pattern, depth):
    dtype = np.uint16 if depth == 16 else np.uint8
    rgb = smooth_rgb(depth=dtype)
    order = {'r': 0, 'g': 1, 'b': 2}
    mosaic = np.zeros(rgb.shape[:2], dtype)
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, order[pattern[k]]]
    msg = image_message(T0, mosaic, f'bayer_{pattern}{depth}')
    out = decode_image_message(msg, raw=True).astype(np.float64)
    inner = (slice(2, -2), slice(2, -2))
    error = np.abs(out[inner] - rgb[inner]).mean() / (257 if depth == 16
                                                      else 1)
    assert error < 3.0, (pattern, depth, error)


def test_zero_stamp_falls_back_to_log_time(tmp_path):
    bag = write_bag(tmp_path / 'zero.bag', 'ros1', {
        '/img': [image_message(0, RGB, 'rgb8')]})
    (frame, ), _ = read(bag, None)
    assert frame.timestamp_ns == 1_000_000 and frame.meta['clock'] == 'arrival'


def test_bad_topics_and_encodings(bag, tmp_path):
    with pytest.raises(SourceError, match=r"topic '/nope' has no image "
                       r'messages; image topics: /cam/bayer \(Image\)'):
        open_source(bag, topic='/nope')
    with pytest.raises(SourceError, match='has 6 image topics'):
        open_source(bag)
    odd = write_bag(tmp_path / 'odd.bag', 'ros1', {
        '/depth': [image_message(T0, np.zeros((4, 4, 2), np.uint16),
                                 '16UC2')],
        '/weird': [image_message(T0, np.zeros((4, 4), np.uint8), 'fancy8')]})
    with pytest.raises(SourceError, match=r"/weird message 0: encoding "
                       r"'fancy8' is not supported; supported: mono8"):
        list(open_source(odd, topic='/weird'))
    broken = write_bag(tmp_path / 'broken.bag', 'ros1', {
        '/img': [image_message(T0, b'not a jpeg', 'jpeg'),
                 image_message(T0 + 1, RGB, 'jpeg')]})
    frames, source = read(broken, '/img')
    assert len(frames) == 1 and source.stats['corrupt'] == 1
    with pytest.raises(SourceError, match='no ROS bag'):
        open_source(tmp_path / 'missing.bag')
