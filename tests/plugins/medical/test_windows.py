"""Window presets, header windows and VOI LUTs against hand-computed values."""
import numpy as np
import pytest
import torch
from pydicom.dataset import Dataset

from perception.data import apply_window
from perception.models import PerceptionDataPreprocessor
from perception.registry import TRANSFORMS
from perception_medical.windows import (
    WINDOW_PRESETS,
    ApplyWindows,
    HeaderWindow,
    display_slice,
    header_windows,
    save_window_montage,
    window_preset,
    window_presets,
)

HU = np.array([[-1350.0, -600.0], [0.0, 150.0]], np.float32)


def test_one_window_by_hand():
    # DICOM linear VOI: y = (x - (c - 0.5)) / (w - 1) + 0.5, clipped
    out = apply_window(HU, *window_preset('lung'))
    expected = [[0.0, 0.5 / 1499 + 0.5], [600.5 / 1499 + 0.5, 1.0]]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_presets_and_names():
    assert window_presets('lung', 'mediastinum', 'bone') == [
        (-600.0, 1500.0), (50.0, 350.0), (400.0, 1800.0)]
    assert window_preset('Soft Tissue') == window_preset('soft-tissue') == \
        (40.0, 400.0)
    assert set(WINDOW_PRESETS) == {'lung', 'mediastinum', 'soft_tissue',
                                   'bone', 'brain', 'liver'}
    with pytest.raises(ValueError, match="Did you mean lung"):
        window_preset('lungs')


def test_several_windows_become_channels():
    t = ApplyWindows(['lung', 'mediastinum', (400, 1800)])
    out = t({'img': HU[..., None]})
    assert out['img'].shape == (2, 2, 3) and out['img'].dtype == np.float32
    # mediastinum C50/W350 at 0 HU: (0 - 49.5) / 349 + 0.5
    assert out['img'][1, 0, 1] == pytest.approx(-49.5 / 349 + 0.5, abs=1e-6)
    # bone C400/W1800 at 150 HU: (150 - 399.5) / 1799 + 0.5
    assert out['img'][1, 1, 2] == pytest.approx(-249.5 / 1799 + 0.5,
                                                abs=1e-6)
    assert out['windows'] == [[-600.0, 1500.0], [50.0, 350.0],
                              [400.0, 1800.0]]


def test_transform_matches_data_preprocessor():
    """Windowing in the pipeline or in the preprocessor: same numbers."""
    windows = window_presets('lung', 'bone')
    rng = np.random.default_rng(0)
    hu = rng.uniform(-1100, 1500, (8, 8)).astype(np.float32)
    piped = ApplyWindows(windows)({'img': hu[..., None]})['img']
    pre = PerceptionDataPreprocessor(windows=windows)
    batch = pre({'inputs': [torch.from_numpy(hu)[None]]})['inputs'][0]
    np.testing.assert_allclose(piped, batch.permute(1, 2, 0).numpy(),
                               atol=1e-6)


def test_stack_of_slices_gets_one_window():
    stack = np.stack([HU, HU + 100, HU - 100], -1)
    out = TRANSFORMS.build(dict(type='ApplyWindows', windows='lung'))(
        {'img': stack})['img']
    np.testing.assert_allclose(out[..., 1], apply_window(HU + 100,
                                                         -600, 1500))
    with pytest.raises(ValueError, match='one window for 2.5D'):
        ApplyWindows(['lung', 'bone'])({'img': stack})


def test_header_windows_linear_exact_sigmoid():
    ds = Dataset()
    ds.WindowCenter = ['40', '-600']
    ds.WindowWidth = ['400', '1500']
    ds.WindowCenterWidthExplanation = ['MEDIASTINUM', 'LUNG']
    found = header_windows(ds)
    assert [(w.center, w.width, w.name) for w in found] == [
        (40.0, 400.0, 'MEDIASTINUM'), (-600.0, 1500.0, 'LUNG')]
    assert found[0].apply(np.float32(40.0)) == pytest.approx(
        0.5 / 399 + 0.5)
    ds.VOILUTFunction = 'LINEAR_EXACT'
    w = header_windows(ds)[0]
    # (x - c) / w + 0.5: 140 HU -> 0.75
    assert w.apply(np.float32(140.0)) == pytest.approx(0.75)
    ds.VOILUTFunction = 'SIGMOID'
    w = header_windows(ds)[0]
    assert w.apply(np.float32(40.0)) == pytest.approx(0.5)
    assert w.apply(np.float32(140.0)) == pytest.approx(1 / (1 + np.exp(-1)))
    ds.WindowWidth = ['400']
    with pytest.raises(ValueError, match='must pair up'):
        header_windows(ds)


def test_voi_lut_table():
    item = Dataset()
    item.LUTDescriptor = [4, 100, 8]
    item.LUTData = [0, 85, 170, 255]
    item.LUTExplanation = 'SOFT'
    ds = Dataset()
    ds.VOILUTSequence = [item]
    (w, ) = header_windows(ds)
    assert w.function == 'TABLE' and w.name == 'SOFT'
    out = w.apply(np.array([90, 100, 101, 102, 103, 500], np.float32))
    np.testing.assert_allclose(out, [0, 0, 85 / 255, 170 / 255, 1, 1])


def test_header_window_in_pipeline_and_from_file(tmp_path):
    from perception_medical.synth import write_ct_study
    study = write_ct_study(tmp_path, n_patients=1, size=16, n_slices=2)
    path = next(study.dicom_dir.rglob('*.dcm'))
    found = header_windows(path)
    assert [(w.center, w.width) for w in found] == [(40, 400), (-600, 1500)]
    t = ApplyWindows('header')
    out = t({'img': HU, 'header_windows': [(40.0, 400.0)]})
    np.testing.assert_allclose(out['img'][..., 0], apply_window(HU, 40, 400))
    out = t({'img': HU})  # no header window: the fallback
    assert out['windows'] == [[40.0, 400.0]]


def test_monochrome1_inverted_for_display_only():
    mono1 = display_slice(HU, 'lung', 'MONOCHROME1')
    mono2 = display_slice(HU, 'lung', 'MONOCHROME2')
    np.testing.assert_array_equal(mono1.astype(int), 255 - mono2.astype(int))
    assert mono2[0, 0] == 0 and mono2[1, 1] == 255
    results = {'img': HU, 'photometric': 'MONOCHROME1'}
    model_input = ApplyWindows('lung')(dict(results))['img']
    shown = ApplyWindows('lung', invert_monochrome1=True)(
        dict(results))['img']
    np.testing.assert_allclose(shown, 1 - model_input, atol=1e-6)
    assert isinstance(HeaderWindow(0, 10).apply(HU), np.ndarray)


def test_montage_writes_png(tmp_path):
    from PIL import Image
    path = save_window_montage([HU, HU], ['lung', 'bone'],
                               str(tmp_path / 'm.png'), titles=['a', 'b'],
                               boxes=[[(0, 0, 1, 1)], []])
    assert Image.open(path).size == (4, 16 + 4)


def test_three_presets_as_rgb_channels_in_pretrained_cfg():
    """lung / mediastinum / bone as the 3 channels of an RGB backbone: the
    windows travel with the weights through the preprocessor's cfg."""
    windows = window_presets('lung', 'mediastinum', 'bone')
    pre = PerceptionDataPreprocessor(
        windows=windows, channel_meaning=['lung', 'mediastinum', 'bone'],
        mean=[0.5] * 3, std=[0.25] * 3)
    cfg = pre.preprocessing_cfg()
    assert cfg['windows'] == [[-600.0, 1500.0], [50.0, 350.0],
                              [400.0, 1800.0]]
    batch = pre({'inputs': [torch.from_numpy(HU)[None]]})['inputs']
    assert batch.shape == (1, 3, 2, 2)
    # mediastinum channel at 0 HU, normalized: ((-49.5/349 + .5) - .5) / .25
    assert float(batch[0, 1, 1, 0]) == pytest.approx(-49.5 / 349 / 0.25,
                                                     abs=1e-5)
