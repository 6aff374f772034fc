"""PredictionPicturesHook: pictures of files PIL cannot read (DICOM) come
from the model input, with boxes where the input has them; names follow the
run's privacy guard."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from perception.engine.privacy import Redactor
from perception.structures import DataSample, make_instances
from perception.visualization import PredictionPicturesHook


def _sample(path: str) -> DataSample:
    sample = DataSample(metainfo=dict(
        img_path=path, series_uid='1.2.3.4', slice_index=2,
        scale_factor=(0.5, 0.5)))
    inst = make_instances([[4, 4, 12, 12]], [0])
    inst.scores = torch.tensor([0.9])
    sample.pred_instances = inst
    return sample


def test_unreadable_image_drawn_from_input_named_by_series(tmp_path):
    folder = tmp_path / 'DOE_JOHN'
    folder.mkdir()
    path = folder / 'IM0001.dcm'
    path.write_bytes(b'DICM' * 64)  # PIL cannot read it
    inputs = [torch.full((1, 16, 16), 0.25)]
    runner = SimpleNamespace(test_dataloader=None,
                             redactor=Redactor([str(folder)]))
    hook = PredictionPicturesHook(str(tmp_path / 'show'), min_size=0)
    hook.after_test_iter(runner, 0, dict(inputs=inputs),
                         [_sample(str(path))])
    (name, ) = os.listdir(tmp_path / 'show')
    assert name.startswith('00000_series-') and name.endswith('-slice-0002.png')
    pic = np.asarray(Image.open(tmp_path / 'show' / name))
    assert pic.shape == (16, 16, 3)
    # the box is drawn in input pixels (not mapped back to the file)
    assert tuple(pic[8, 4]) == (255, 64, 0) and tuple(pic[8, 13]) != (255, 64, 0)
    # unguarded: the file's own name
    runner.redactor = None
    hook = PredictionPicturesHook(str(tmp_path / 'plain'), min_size=0)
    hook.after_test_iter(runner, 0, dict(inputs=inputs), [_sample(str(path))])
    assert os.listdir(tmp_path / 'plain') == ['00000_IM0001.png']


def test_boxes_map_back_through_the_recorded_homography(tmp_path):
    """A prediction on the resized, flipped input lands on the object in the
    original picture (pixel-edge box [10, 4, 14, 8] of a 20x10 image)."""
    path = tmp_path / 'frame.png'
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(path)
    # original -> current: scale x2, then horizontal flip of the 40 px image
    homography = np.array([[-2, 0, 40], [0, 2, 0], [0, 0, 1]], np.float32)
    sample = DataSample(metainfo=dict(img_path=str(path),
                                      homography_matrix=homography))
    inst = make_instances([[12, 8, 20, 16]], [0])  # the object, current image
    inst.scores = torch.tensor([0.9])
    sample.pred_instances = inst
    runner = SimpleNamespace(test_dataloader=None, redactor=None)
    hook = PredictionPicturesHook(str(tmp_path / 'show'), min_size=0)
    hook.after_test_iter(runner, 0, dict(inputs=None), [sample])
    pic = np.asarray(Image.open(tmp_path / 'show' / '00000_frame.png'))
    orange = np.all(pic == (255, 64, 0), axis=-1)
    assert orange[4, 10] and orange[7, 13]   # top-left and bottom-right
    assert not orange[4, 14] and not orange[8, 10]


def test_ct_slice_is_enlarged_grey_with_truth_and_prediction(tmp_path):
    """A 32 px CT slab (3 slices, HU) from a windowed model: the picture is
    the centre slice in the first window, enlarged 16x to 512 px, with the
    true box in green and the predicted one in orange at the same place."""
    path = tmp_path / 'IM0001.dcm'
    path.write_bytes(b'DICM' * 64)
    slab = torch.full((3, 32, 32), -1000.0)  # air ...
    slab[1, 8:16, 8:16] = 40.0  # ... a soft-tissue square on the centre slice
    slab[0] = slab[2] = 1000.0  # neighbours: bone (must not show)
    sample = DataSample(metainfo=dict(img_path=str(path)))
    inst = make_instances([[8, 8, 16, 16]], [0])
    inst.scores = torch.tensor([0.9])
    sample.pred_instances = inst
    sample.gt_instances = make_instances([[20, 20, 28, 28]], [0])
    model = SimpleNamespace(data_preprocessor=SimpleNamespace(
        windows=[(40.0, 400.0), (-600.0, 1500.0)]))
    runner = SimpleNamespace(test_dataloader=None, redactor=None, model=model)
    hook = PredictionPicturesHook(str(tmp_path / 'show'))
    hook.after_test_iter(runner, 0, dict(inputs=[slab]), [sample])
    pic = np.asarray(Image.open(tmp_path / 'show' / '00000_IM0001.png'))
    assert pic.shape == (512, 512, 3)
    # grey: centre slice, soft-tissue window (40 HU -> 0.5, air -> 0)
    assert tuple(pic[200, 200]) == (128, 128, 128)
    assert tuple(pic[400, 100]) == (0, 0, 0)
    orange = np.all(pic == (255, 64, 0), axis=-1)
    green = np.all(pic == (0, 200, 0), axis=-1)
    assert orange[128, 200] and orange[255, 200]  # top / bottom edges x16
    assert not orange[256, 200]
    assert green[320, 400] and green[447, 400] and not green[448, 400]
