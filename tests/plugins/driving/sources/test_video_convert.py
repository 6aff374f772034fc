"""RGB conversion of decoded PyAV frames (``video_convert.RgbConverter``):
the same pixels as PyAV's ``to_ndarray(format='rgb24')``, arrays reused
only once nobody holds them, and presentation times in integer arithmetic
equal to the Fraction product they replace."""
from fractions import Fraction

import av
import numpy as np
import pytest
from driving_fixtures import frame_code, write_video

from perception.sources import open_source
from perception_driving.sources.video_convert import ArrayPool, RgbConverter
from perception_driving.sources.video_decode import pts_to_ns


def decoded(path):
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


@pytest.mark.parametrize('codec,fmt', [('libx264', 'yuv420p'),
                                       ('mjpeg', 'yuvj420p')])
def test_same_pixels_as_pyav_to_ndarray(tmp_path, codec, fmt):
    path = write_video(tmp_path / f'clip_{codec}.mkv', n=6, codec=codec,
                       size=(160, 96))
    frames = decoded(path)
    assert frames[0].format.name == fmt
    convert = RgbConverter()
    for frame in frames:
        expected = frame.to_ndarray(format='rgb24')
        got = convert(frame)
        assert got.dtype == np.uint8 and got.shape == (96, 160, 3)
        np.testing.assert_array_equal(got, expected)


def test_arrays_reused_only_when_released(tmp_path):
    path = write_video(tmp_path / 'clip.mp4', n=8)
    frames = decoded(path)
    convert = RgbConverter(pool=3)
    # a consumer that drops each picture before the next: two arrays turn
    seen = set()
    for frame in frames:
        image = convert(frame)
        seen.add(id(image))
        del image
    assert len(seen) == 1
    # a consumer that keeps every picture: none is ever overwritten
    kept = [convert(frame) for frame in frames]
    assert [frame_code(image) for image in kept] == list(range(8))
    for image, frame in zip(kept, frames):
        np.testing.assert_array_equal(image, frame.to_ndarray(format='rgb24'))
    # a view keeps its array from reuse too
    view = kept[0][10:20]
    before = view.copy()
    del kept
    for frame in frames:
        convert(frame)
    np.testing.assert_array_equal(view, before)


def test_pool_replaces_arrays_when_the_size_changes():
    pool = ArrayPool(size=2)
    first = pool.take((4, 6, 3))
    del first
    second = pool.take((8, 6, 3))  # the idle array is replaced
    assert second.shape == (8, 6, 3)
    held = pool.take((8, 6, 3))
    assert held is not second and pool.take((8, 6, 3)) is None
    del held
    again = pool.take((8, 6, 3))
    assert again.shape == (8, 6, 3) and again is not second
    assert pool.take((4, 6, 3)) is None  # both arrays held


def test_source_frames_stay_intact_when_kept(tmp_path):
    path = write_video(tmp_path / 'clip.mp4', n=12)
    with open_source(str(path)) as source:
        frames = list(source)
    assert [frame_code(f.image) for f in frames] == list(range(12))
    assert len({id(f.image) for f in frames}) == 12


@pytest.mark.parametrize('base', [Fraction(1, 90000), Fraction(1, 1000),
                                  Fraction(1001, 30000), Fraction(1, 3)])
def test_pts_to_ns_equals_the_fraction_product(base):
    num, den = base.numerator * 1_000_000_000, base.denominator
    for pts in (0, 1, 2, 7, 1001, 3003, 123456789, 2**40 + 3, -1, -3003,
                -(2**33) - 1):
        assert pts_to_ns(pts, num, den) == int(pts * base * 1_000_000_000)
