"""The intensity windowing op against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from perception.data import apply_window, apply_windows


def test_single_window_matches_dicom_linear_formula():
    # c=40, w=400: y = (x - 39.5) / 399 + 0.5, clipped to [0, 1]
    hu = np.array([-1000, -100, 40, 200, 1000], np.float32)
    expected = np.array([0.0, (-100 - 39.5) / 399 + 0.5,
                         (40 - 39.5) / 399 + 0.5, (200 - 39.5) / 399 + 0.5,
                         1.0], np.float32)
    out = apply_window(hu, 40, 400)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.dtype == np.float32


def test_torch_and_numpy_agree():
    hu = np.linspace(-1200, 1200, 97, dtype=np.float32)
    np.testing.assert_allclose(
        apply_window(torch.from_numpy(hu), -600, 1500).numpy(),
        apply_window(hu, -600, 1500), atol=1e-6)


def test_several_windows_become_channels():
    hu = np.array([[-600.0, 40.0], [400.0, 1000.0]], np.float32)
    windows = [(-600, 1500), (40, 400), (400, 1800)]
    out = apply_windows(hu, windows)
    assert out.shape == (3, 2, 2)
    for channel, (c, w) in enumerate(windows):
        np.testing.assert_allclose(out[channel], apply_window(hu, c, w))
    batch = torch.from_numpy(np.stack([hu, hu]))
    assert apply_windows(batch, windows, axis=1).shape == (2, 3, 2, 2)


def test_bad_width_is_refused_with_the_values():
    with pytest.raises(ValueError, match='width must be > 1, got 0'):
        apply_window(np.zeros(3), 40, 0)


def test_scalar_input_gives_scalar_output():
    out = apply_window(np.float32(40.0), 40, 400)
    assert np.shape(out) == ()
    assert float(out) == pytest.approx((40 - 39.5) / 399 + 0.5)
