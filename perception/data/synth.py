"""Generated images for smoke tests, quick starts and pretraining tries:
labelled shapes on smooth, shaded backgrounds, written as PNG folders that
``ImageFolderDataset`` reads (``OUT/<class>/<n>.png``)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from perception.progress import progress

SHAPES = ('circle', 'square', 'triangle')


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    return Image.fromarray(img.clip(0, 255).astype(np.uint8))


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float,
          r: float, fill: tuple) -> None:
    if shape == 'circle':
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == 'square':
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)],
                     fill=fill)


def render_shape_image(shape: str, rng: np.random.Generator, size: int = 64,
                       distractors: int = 2) -> np.ndarray:
    """One RGB uint8 (size, size, 3) image whose largest object is ``shape``,
    with smaller objects of other kinds as distractors."""
    img = _background(rng, size)
    draw = ImageDraw.Draw(img)
    for _ in range(distractors):
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        _draw(draw, kind, *rng.uniform(0.1, 0.9, 2) * size,
              rng.uniform(0.05, 0.1) * size,
              tuple(int(v) for v in rng.integers(0, 256, 3)))
    r = rng.uniform(0.18, 0.3) * size
    cx, cy = rng.uniform(r, size - r, 2)
    _draw(draw, shape, cx, cy, r,
          tuple(int(v) for v in rng.integers(0, 256, 3)))
    img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0, 0.8)))
    array = np.asarray(img).astype(np.int16)
    array += rng.normal(0, 3, array.shape).astype(np.int16)
    return array.clip(0, 255).astype(np.uint8)


def write_shape_images(out: str, n_per_class: int = 32, size: int = 64,
                       classes: Sequence[str] = SHAPES, seed: int = 0,
                       quiet: bool | None = None) -> list[str]:
    """Write ``n_per_class`` PNGs per class to ``out/<class>/``, with
    progress (:mod:`perception.progress`; ``quiet`` turns it off).

    Returns:
        The written paths, class by class.
    """
    unknown = set(classes) - set(SHAPES)
    if unknown:
        raise ValueError(f'unknown shape classes {sorted(unknown)}; choose '
                         f'from {SHAPES}')
    rng = np.random.default_rng(seed)
    paths = []
    with progress(total=n_per_class * len(classes), desc='synth-images',
                  unit='image', quiet=quiet) as bar:
        for shape in classes:
            folder = os.path.join(out, shape)
            os.makedirs(folder, exist_ok=True)
            for i in range(n_per_class):
                path = os.path.join(folder, f'{i:05d}.png')
                Image.fromarray(render_shape_image(shape, rng, size)).save(
                    path)
                paths.append(path)
                bar.update()
    return paths
