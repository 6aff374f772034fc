"""Back-mapping in one place: boxes and points predicted on the current
(transformed) image map back to source pixels and, for CT, to LPS mm,
through whatever resize / flip / crop chain the transforms recorded."""
from __future__ import annotations

import numpy as np
import pytest

from perception.data import boxes_to_source, points_to_lps
from perception.data.geometry import points_to_source, record_geometry
from perception.data.transforms import RandomFlip, Resize
from perception.structures import DataSample


def _chain(shape=(40, 60)) -> dict:
    """A resize to 30x20, a horizontal flip and a crop of 4 px on the left."""
    results = dict(img=np.zeros(shape + (1, ), np.float32),
                   img_shape=shape, ori_shape=shape)
    results = Resize((30, 20))(results)
    results = RandomFlip(prob=1.0)(results)
    record_geometry(results, np.array([[1, 0, -4], [0, 1, 0], [0, 0, 1]]),
                    (20, 26))
    return results


def test_boxes_come_back_through_resize_flip_and_crop():
    results = _chain()
    source = np.array([[6.0, 4.0, 18.0, 20.0]])  # source pixels
    current = np.array([[30 - 9.0 - 4, 2.0, 30 - 3.0 - 4, 10.0]])
    sample = DataSample(metainfo=dict(
        homography_matrix=results['homography_matrix']))
    np.testing.assert_allclose(boxes_to_source(sample, current), source,
                               atol=1e-4)
    # a dict (DataSample.to_dict()) works the same way
    np.testing.assert_allclose(boxes_to_source(sample.to_dict(), current),
                               source, atol=1e-4)
    # no transform recorded: identity
    np.testing.assert_allclose(boxes_to_source({}, source), source)


def test_points_to_lps_on_a_tilted_affine():
    rng = np.random.default_rng(11)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([2.5, 0.7, 0.8])  # z, y, x spacing
    affine[:3, 3] = [-120.0, 30.0, 55.0]
    results = _chain()
    sample = DataSample(metainfo=dict(
        homography_matrix=results['homography_matrix'], affine=affine,
        slice_index=7))
    centre_src = np.array([[12.5, 20.5]])  # pixel-edge x, y = pixel (20, 12)
    current = points_to_source(
        {'homography_matrix': np.linalg.inv(results['homography_matrix'])},
        centre_src)  # the same point on the current image
    lps = points_to_lps(sample, current)
    expected = affine @ np.array([7, 20.0, 12.0, 1.0])
    np.testing.assert_allclose(lps[0], expected[:3], atol=1e-6)


def test_points_to_lps_says_what_is_missing():
    with pytest.raises(ValueError, match='affine.*slice_index'):
        points_to_lps(DataSample(), np.zeros((1, 2)))
