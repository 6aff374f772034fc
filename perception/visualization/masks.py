"""Label maps drawn over pictures: one colour per class (the box palette
first, then fixed pseudo-random colours), ignored pixels left as they are,
and a legend of the classes shown."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from perception.structures import SEG_IGNORE_INDEX
from perception.visualization.palette import PALETTE


def seg_palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 colours: :data:`PALETTE`, then seeded ones."""
    rng = np.random.default_rng(19)
    extra = rng.integers(40, 256, (max(num_classes - len(PALETTE), 0), 3))
    colours = np.concatenate([np.array(PALETTE, np.int64), extra])
    return colours[:num_classes].astype(np.uint8)


def overlay_mask(image: np.ndarray, labels: np.ndarray, num_classes: int,
                 alpha: float = 0.5, ignore_index: int = SEG_IGNORE_INDEX,
                 skip: Sequence[int] = ()) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with ``labels`` (H, W) blended in at
    ``alpha``; ignored (or out-of-range) pixels and the labels in ``skip``
    (e.g. a class named 'background') unchanged."""
    labels = np.asarray(labels).astype(np.int64)
    palette = seg_palette(max(num_classes, int(labels.max(initial=0)) + 1))
    shown = (labels != ignore_index) & (labels >= 0) & \
        (labels < len(palette)) & ~np.isin(labels, list(skip))
    out = image.astype(np.float32).copy()
    colour = palette[labels[shown]].astype(np.float32)
    out[shown] = (1 - alpha) * out[shown] + alpha * colour
    return out.round().clip(0, 255).astype(np.uint8)


def draw_legend(image, labels: np.ndarray, classes: Sequence[str],
                max_entries: int = 10, skip: Sequence[int] = ()):
    """Write the classes present in ``labels`` (but those in ``skip``) in
    their colours at the bottom left of a PIL image (largest areas
    first)."""
    from PIL import ImageDraw
    labels = np.asarray(labels).astype(np.int64).ravel()
    counts = np.bincount(labels[(labels >= 0) & (labels != SEG_IGNORE_INDEX)])
    present = [int(i) for i in np.argsort(-counts)
               if counts[i] > 0 and int(i) not in skip]
    palette = seg_palette(max(len(classes), len(counts)))
    draw = ImageDraw.Draw(image)
    y = image.height - 12 * min(len(present), max_entries) - 2
    for i in present[:max_entries]:
        name = classes[i] if i < len(classes) else str(i)
        draw.rectangle([2, y + 1, 10, y + 9], fill=tuple(palette[i].tolist()))
        draw.text((13, y), name, fill=(255, 255, 255))
        y += 12
    return image
