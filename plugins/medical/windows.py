"""CT window presets, windows read from DICOM headers, and display output.

The arithmetic is the core's :func:`perception.data.apply_window` (DICOM
linear VOI, HU -> [0, 1]); this module names the windows radiologists use,
reads the ones a scanner stored (WindowCenter/Width with their VOI LUT
function, or a VOI LUT table), and turns windowed slices into pictures
(MONOCHROME1 inverted: only display outputs are).

Presets (center, width) in HU, as commonly taught (e.g. Radiopaedia):
lung (-600, 1500), mediastinum (50, 350), soft tissue (40, 400),
bone (400, 1800), brain (40, 80), liver (30, 150).
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from perception.data import BaseTransform, apply_window, apply_windows
from perception.registry import TRANSFORMS

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    'lung': (-600.0, 1500.0),
    'mediastinum': (50.0, 350.0),
    'soft_tissue': (40.0, 400.0),
    'bone': (400.0, 1800.0),
    'brain': (40.0, 80.0),
    'liver': (30.0, 150.0),
}

WindowSpec = Union[str, Sequence[float], 'HeaderWindow']


def _key(name: str) -> str:
    return name.strip().lower().replace(' ', '_').replace('-', '_')


def window_preset(name: str) -> tuple[float, float]:
    """(center, width) of a named preset ('soft tissue', 'soft-tissue' and
    'soft_tissue' are the same); unknown names list the presets."""
    key = _key(name)
    if key not in WINDOW_PRESETS:
        close = difflib.get_close_matches(key, WINDOW_PRESETS, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ''
        raise ValueError(f'unknown window preset {name!r}.{hint} Presets: '
                         f"{', '.join(WINDOW_PRESETS)}; or give "
                         '(center, width) in HU')
    return WINDOW_PRESETS[key]


def window_presets(*names: str) -> list[tuple[float, float]]:
    """Several presets, e.g. ``window_presets('lung', 'mediastinum',
    'bone')`` for the three channels of an RGB-pretrained backbone."""
    return [window_preset(n) for n in names]


def resolve_windows(windows: Sequence[WindowSpec]) -> list[tuple]:
    """Names or (center, width) pairs -> list of (center, width)."""
    out = []
    for w in windows:
        if isinstance(w, str):
            out.append(window_preset(w))
        elif isinstance(w, HeaderWindow):
            out.append((w.center, w.width))
        else:
            c, width = (float(v) for v in w)
            out.append((c, width))
    return out


@dataclass
class HeaderWindow:
    """A window stored in a DICOM header.

    Attributes:
        center, width: WindowCenter / WindowWidth (modality units); for a
            VOI LUT table, the range it covers.
        name: WindowCenterWidthExplanation or LUTExplanation ('' if none).
        function: VOILUTFunction: LINEAR, LINEAR_EXACT, SIGMOID, or 'TABLE'.
        lut: for 'TABLE': (first_mapped_value, bits, data array).
    """

    center: float
    width: float
    name: str = ''
    function: str = 'LINEAR'
    lut: tuple | None = None

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Modality values -> float32 [0, 1] through this window."""
        values = np.asarray(values, np.float32)
        if self.function == 'TABLE':
            first, bits, data = self.lut
            idx = np.clip(np.round(values - first), 0, len(data) - 1)
            return (data[idx.astype(np.int64)] / float(2 ** bits - 1)
                    ).astype(np.float32)
        if self.function == 'LINEAR_EXACT':  # PS3.3 C.11.2.1.3.2
            out = (values - self.center) / self.width + 0.5
            return np.clip(out, 0, 1).astype(np.float32)
        if self.function == 'SIGMOID':  # PS3.3 C.11.2.1.3.1
            return (1.0 / (1.0 + np.exp(-4.0 * (values - self.center)
                                        / self.width))).astype(np.float32)
        return apply_window(values, self.center, self.width)


def _multi(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, '__len__'):
        return [value]
    return list(value)


def header_windows(ds_or_path) -> list[HeaderWindow]:
    """Windows stored in a DICOM header, in stored order: each
    WindowCenter/WindowWidth pair (with VOILUTFunction), then each item of
    VOILUTSequence. Accepts a pydicom Dataset or a file path; an empty list
    when the header stores none."""
    if isinstance(ds_or_path, (str, os.PathLike)):
        import pydicom
        ds = pydicom.dcmread(ds_or_path, stop_before_pixels=True)
    else:
        ds = ds_or_path
    where = getattr(ds, 'filename', None) or 'dataset'
    centers = _multi(ds.get('WindowCenter'))
    widths = _multi(ds.get('WindowWidth'))
    names = _multi(ds.get('WindowCenterWidthExplanation'))
    if len(centers) != len(widths):
        raise ValueError(
            f'{where}: WindowCenter has {len(centers)} value(s) but '
            f'WindowWidth has {len(widths)}; they must pair up (fix the '
            'header, or window with a preset instead)')
    function = str(ds.get('VOILUTFunction', 'LINEAR') or 'LINEAR').upper()
    out = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        c, w = float(c), float(w)
        if w <= (1 if function == 'LINEAR' else 0):
            raise ValueError(f'{where}: WindowWidth {w} is invalid (DICOM: '
                             '> 1 for LINEAR, > 0 otherwise); fix the '
                             'header or window with a preset')
        out.append(HeaderWindow(c, w, str(names[i]) if i < len(names)
                                else '', function))
    for item in ds.get('VOILUTSequence', []) or []:
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        n = n or 65536  # 0 means 2**16 entries
        raw = item.LUTData
        if isinstance(raw, bytes):
            raw = np.frombuffer(raw, '<u2' if bits > 8 else 'u1')
        data = np.asarray(raw, np.float64)[:n]
        out.append(HeaderWindow(first + n / 2.0, float(n),
                                str(item.get('LUTExplanation', '')), 'TABLE',
                                (first, bits, data)))
    return out


def invert_for_display(windowed, photometric: str = 'MONOCHROME2'):
    """``1 - windowed`` for MONOCHROME1 (low values shown white); unchanged
    otherwise. Only for pictures: model inputs keep modality semantics."""
    if str(photometric).upper() == 'MONOCHROME1':
        return 1.0 - windowed
    return windowed


def display_slice(values: np.ndarray, window: WindowSpec,
                  photometric: str = 'MONOCHROME2') -> np.ndarray:
    """(H, W) modality values -> uint8 (H, W) picture through one window."""
    if isinstance(window, HeaderWindow):
        out = window.apply(values)
    else:
        c, w = resolve_windows([window])[0]
        out = apply_window(np.asarray(values, np.float32), c, w)
    out = invert_for_display(out, photometric)
    return np.round(np.asarray(out) * 255.0).astype(np.uint8)


@TRANSFORMS.register_module()
class ApplyWindows(BaseTransform):
    """Window ``img`` (H, W, C) modality values into [0, 1] float32.

    With one input channel each window becomes an output channel (e.g.
    ``['lung', 'mediastinum', 'bone']`` -> 3 channels); with C input
    channels (2.5D stacks) one window is applied to every channel. Uses the
    core op, so numbers match the data preprocessor's ``windows``. Records
    the windows in ``results['windows']``.

    Args:
        windows: preset names or (center, width) pairs; ``'header'`` takes
            the first window of ``results['header_windows']`` (set by the
            CT datasets), falling back to ``fallback``.
        fallback: the window when ``'header'`` finds none.
        invert_monochrome1: invert MONOCHROME1 images (``results
            ['photometric']``). For display outputs only; leave False for
            model inputs.
    """

    def __init__(self, windows: Sequence[WindowSpec] | str = ('lung', ),
                 fallback: WindowSpec = 'soft_tissue',
                 invert_monochrome1: bool = False) -> None:
        self.from_header = windows == 'header'
        self.windows = [] if self.from_header else resolve_windows(
            [windows] if isinstance(windows, str) else windows)
        self.fallback = resolve_windows([fallback])[0]
        self.invert_monochrome1 = invert_monochrome1

    def transform(self, results: dict) -> dict:
        img = np.asarray(results['img'], np.float32)
        if img.ndim == 2:
            img = img[..., None]
        windows = self.windows
        if self.from_header:
            stored = results.get('header_windows') or []
            windows = [tuple(stored[0])[:2]] if stored else [self.fallback]
        if img.shape[-1] == 1:
            out = apply_windows(img[..., 0], windows, axis=-1)
        elif len(windows) == 1:
            out = apply_window(img, *windows[0])
        else:
            raise ValueError(
                f'ApplyWindows: {len(windows)} windows for an image with '
                f'{img.shape[-1]} channels; give one window for 2.5D stacks, '
                'or several windows for single-slice inputs')
        if self.invert_monochrome1:
            out = invert_for_display(out, results.get('photometric', ''))
        results['img'] = np.ascontiguousarray(out, dtype=np.float32)
        results['windows'] = [list(w) for w in windows]
        return results


def save_window_montage(slices: Sequence[np.ndarray],
                        windows: Sequence[WindowSpec], path: str,
                        titles: Sequence[str] | None = None,
                        photometric: str = 'MONOCHROME2',
                        boxes: Sequence[Sequence] | None = None) -> str:
    """Save a grid picture: one row per slice, one column per window.

    Args:
        slices: (H, W) modality values each.
        windows: preset names / (center, width) / HeaderWindow per column.
        path: PNG to write.
        titles: optional row labels (drawn at the left of each row).
        boxes: optional per-slice lists of xyxy pixel-edge boxes (outlined).
    """
    from PIL import Image, ImageDraw
    names = [w if isinstance(w, str) else
             (w.name if isinstance(w, HeaderWindow) else
              f'C{w[0]:g}/W{w[1]:g}') for w in windows]
    rows = []
    for r, values in enumerate(slices):
        tiles = []
        for window in windows:
            tile = Image.fromarray(display_slice(values, window,
                                                 photometric)).convert('RGB')
            draw = ImageDraw.Draw(tile)
            for box in (boxes[r] if boxes else []):
                draw.rectangle([float(v) for v in box], outline=(255, 64, 0))
            tiles.append(tile)
        rows.append(tiles)
    h, w = rows[0][0].height, rows[0][0].width
    header = 16
    canvas = Image.new('RGB', (w * len(windows), header + h * len(rows)))
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(names):
        draw.text((c * w + 4, 2), f'{name} window', fill=(255, 255, 255))
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            canvas.paste(tile, (c * w, header + r * h))
        if titles:
            draw.text((4, header + r * h + 4), titles[r], fill=(255, 255, 0))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.save(path)
    return path


__all__ = ['WINDOW_PRESETS', 'window_preset', 'window_presets',
           'resolve_windows', 'HeaderWindow', 'header_windows',
           'invert_for_display', 'display_slice', 'ApplyWindows',
           'save_window_montage']
