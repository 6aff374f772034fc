"""Box conventions: known values and round trips."""
import numpy as np
import pytest
import torch

from perception.data.boxes import (
    BOX_FORMATS,
    box_areas,
    box_problem,
    clip_boxes,
    convert_boxes,
    transform_boxes,
)

RNG = np.random.default_rng(0)
XYXY = np.concatenate([RNG.uniform(0, 500, (20, 2)),
                       RNG.uniform(500, 900, (20, 2))], axis=1).astype(
                           np.float32)


def test_known_values():
    # a box covering pixels 0..9 in each convention
    assert convert_boxes([[0, 0, 9, 9]], 'bdd100k', 'xyxy').tolist() == [
        [0, 0, 10, 10]]
    assert convert_boxes([[0, 0, 9, 9]], 'kitti', 'xyxy').tolist() == [
        [0, 0, 10, 10]]
    assert convert_boxes([[0, 0, 10, 10]], 'coco', 'xyxy').tolist() == [
        [0, 0, 10, 10]]
    assert convert_boxes([[5, 5, 10, 10]], 'cxcywh', 'xyxy').tolist() == [
        [0, 0, 10, 10]]
    # COCO val2017 annotation 1768 (the data format page's bbox field)
    xyxy = convert_boxes([[473.07, 395.93, 38.65, 28.67]], 'coco', 'xyxy')
    np.testing.assert_allclose(xyxy, [[473.07, 395.93, 511.72, 424.60]],
                               atol=1e-4)
    # a KITTI box touching the right edge of a 1242-wide image
    assert convert_boxes([[1100, 10, 1241, 50]], 'kitti', 'xyxy')[0, 2] == 1242


@pytest.mark.parametrize('src', BOX_FORMATS)
@pytest.mark.parametrize('dst', BOX_FORMATS)
def test_round_trips(src, dst):
    boxes = convert_boxes(XYXY, 'xyxy', src)
    back = convert_boxes(convert_boxes(boxes, src, dst), dst, src)
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    np.testing.assert_allclose(convert_boxes(boxes, src, 'xyxy'), XYXY,
                               atol=1e-3)


def test_inputs_untouched_and_torch_accepted():
    boxes = XYXY.copy()
    convert_boxes(boxes, 'xyxy', 'xywh')
    np.testing.assert_array_equal(boxes, XYXY)
    out = convert_boxes(torch.from_numpy(XYXY), 'xyxy', 'xywh')
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert convert_boxes([], 'coco', 'xyxy').shape == (0, 4)
    with pytest.raises(ValueError, match='unknown box format'):
        convert_boxes(XYXY, 'yolo', 'xyxy')


def test_problems_name_why():
    assert box_problem([0, 0, 10, 10], (20, 20)) is None
    assert 'negative or zero size' in box_problem([10, 0, 5, 10], None)
    assert 'outside the 20x20 image' in box_problem([0, 0, 30, 10], (20, 20))
    assert box_problem([-1.5, 0, 21, 10], (20, 20)) is None  # tolerance
    assert 'non-finite' in box_problem([0, 0, np.nan, 1], None)


def test_geometry():
    assert box_areas([[0, 0, 10, 5], [5, 5, 1, 1]]).tolist() == [50, 0]
    assert clip_boxes([[-5, -5, 30, 10]], (20, 25)).tolist() == [
        [0, 0, 25, 10]]
    flip = np.array([[-1, 0, 100], [0, 1, 0], [0, 0, 1]])
    out = transform_boxes([[10, 20, 30, 40]], flip)
    assert out.tolist() == [[70, 20, 90, 40]]
    back = transform_boxes(out, np.linalg.inv(flip))
    assert back.tolist() == [[10, 20, 30, 40]]
