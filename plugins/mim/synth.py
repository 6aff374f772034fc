"""Generated unlabeled images for pretraining tries: overlapping shapes
with stripes, checks and gradients on shaded backgrounds, drawn at full
resolution with little noise.

The core's shape images are small and noisy (they test a classifier);
upscaled to 224 their patches are mostly noise, which no model can predict.
These have content a masked autoencoder can learn from (edges continue,
textures repeat), like real frames.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float texture: a gradient, stripes or checks."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    kind = rng.integers(3)
    if kind == 0:                                   # linear gradient
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 1:                                 # stripes
        period = rng.uniform(0.04, 0.2)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * t / period)
    else:                                           # checks
        period = rng.uniform(0.05, 0.25)
        t = ((np.floor(xx / period) + np.floor(yy / period)) % 2)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def render_pretrain_image(rng: np.random.Generator, size: int = 224,
                          n_shapes: tuple[int, int] = (3, 8),
                          noise: float = 1.0) -> np.ndarray:
    """One RGB uint8 (size, size, 3) image."""
    canvas = _texture(rng, size)
    for _ in range(int(rng.integers(*n_shapes))):
        layer = Image.new('L', (size, size), 0)
        draw = ImageDraw.Draw(layer)
        r = rng.uniform(0.06, 0.3) * size
        cx, cy = rng.uniform(0, size, 2)
        kind = rng.integers(3)
        box = [cx - r, cy - r, cx + r, cy + r]
        if kind == 0:
            draw.ellipse(box, fill=255)
        elif kind == 1:
            draw.rectangle(box, fill=255)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)],
                         fill=255)
        alpha = np.asarray(layer, np.float32)[..., None] / 255.0
        canvas = canvas * (1 - alpha) + _texture(rng, size) * alpha
    canvas += rng.normal(0, noise, canvas.shape)
    return canvas.clip(0, 255).astype(np.uint8)


def write_pretrain_images(out: str, n: int, size: int = 224,
                          seed: int = 0, quiet: bool | None = None,
                          desc: str = 'synth-mim') -> list[str]:
    """Write ``n`` PNGs ``out/<i>.png`` (an ``ImageFolderDataset`` root),
    with progress (:mod:`perception.progress`; ``quiet`` turns it off)."""
    from perception.progress import progress
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    paths = []
    for i in progress(range(n), desc=desc, unit='image', quiet=quiet):
        path = os.path.join(out, f'{i:06d}.png')
        Image.fromarray(render_pretrain_image(rng, size)).save(path)
        paths.append(path)
    return paths
