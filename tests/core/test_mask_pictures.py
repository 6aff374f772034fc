"""Label maps over pictures: blended in class colours at ``alpha``, ignored
and skipped pixels left as they were, a legend of what is shown."""
from __future__ import annotations

import numpy as np
from PIL import Image

from perception.visualization.masks import draw_legend, overlay_mask, seg_palette


def test_overlay_blends_classes_and_leaves_ignored_pixels():
    image = np.full((2, 3, 3), 100, np.uint8)
    labels = np.array([[0, 1, 255], [2, 2, 0]])
    out = overlay_mask(image, labels, 3, alpha=0.5, skip=[2])
    palette = seg_palette(3).astype(np.float32)
    np.testing.assert_array_equal(out[0, 0], np.round(50 + palette[0] / 2))
    np.testing.assert_array_equal(out[0, 1], np.round(50 + palette[1] / 2))
    np.testing.assert_array_equal(out[0, 2], image[0, 2])   # ignored
    np.testing.assert_array_equal(out[1, :2], image[1, :2])  # skipped


def test_legend_names_the_classes_shown():
    image = Image.new('RGB', (80, 60))
    labels = np.zeros((60, 80), np.int64)
    labels[:10] = 1
    drawn = np.asarray(draw_legend(image, labels, ['road', 'car'], skip=[]))
    # two entries at the bottom left: swatches in the classes' colours
    palette = seg_palette(2)
    assert (drawn[:, :12] == palette[0]).all(-1).any()
    assert (drawn[:, :12] == palette[1]).all(-1).any()
    only = np.asarray(draw_legend(Image.new('RGB', (80, 60)), labels,
                                  ['road', 'car'], skip=[0]))
    assert not (only[:, :12] == palette[0]).all(-1).any()


def test_browse_pictures_blend_the_label_map():
    import torch

    from perception.data.transforms import PackInputs
    from perception.visualization.draw import render_sample
    labels = np.zeros((20, 30), np.uint8)
    labels[10:] = 1
    labels[:5] = 255
    packed = PackInputs()(dict(img=np.full((20, 30, 3), 100, np.uint8),
                               gt_seg_map=labels))
    picture = np.asarray(render_sample(packed['inputs'],
                                       packed['data_samples'],
                                       ['road', 'car']))
    expected = overlay_mask(np.full((20, 30, 3), 100, np.uint8), labels, 2)
    np.testing.assert_array_equal(picture[:20], expected)
    assert torch.equal(packed['inputs'], torch.full((3, 20, 30), 100,
                                                     dtype=torch.uint8))
