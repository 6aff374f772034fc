"""The sample picture of synthetic drives in ``docs/images``: one drive
under five conditions, its labels drawn on the first, and a rig camera."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .drive import render_drive
from .labels import FrameLabels

CLASS_COLOURS = {'pedestrian': (255, 60, 60), 'rider': (255, 150, 0),
                 'car': (0, 200, 255), 'truck': (60, 110, 255),
                 'bus': (190, 80, 255), 'train': (150, 150, 150),
                 'motorcycle': (255, 230, 0), 'bicycle': (0, 255, 140),
                 'traffic light': (255, 255, 255),
                 'traffic sign': (255, 120, 200)}


def draw_labels(image: np.ndarray, labels: FrameLabels,
                scale: float = 1.0) -> np.ndarray:
    """A copy of ``image`` (the labeled image resized by ``scale``) with
    boxes coloured by class and ignore regions shaded grey."""
    import cv2
    out = image.copy()
    for o in labels.objects:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in o.bbox)
        if o.ignore:
            region = out[y1:y2, x1:x2].astype(np.float32)
            out[y1:y2, x1:x2] = (0.45 * region + 0.55 * 128).astype(np.uint8)
            continue
        colour = CLASS_COLOURS[o.category]
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, 1)
        if y2 - y1 >= 14:
            cv2.putText(out, o.category, (x1 + 1, max(y1 - 2, 7)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1,
                        cv2.LINE_AA)
    return out


def write_sample_picture(path: str, seed: int = 10,
                         size: Sequence[int] = (640, 360),
                         tile: Sequence[int] = (480, 270)) -> str:
    """The picture in ``docs/images``: one drive under five conditions, its
    labels drawn on the first, and the rig's left camera."""
    import cv2
    tiles = []
    for k, (lighting, weather) in enumerate((
            ('day', 'clear'), ('day', 'clear'), ('dusk', 'rain'),
            ('night', 'clear'), ('day', 'fog'), ('day', 'clear'))):
        cams = 2 if k == 5 else 1
        drive = render_drive(seed, 6, size, cams, lighting, weather)
        cam = drive.rig[-1].name
        image = cv2.resize(drive.images[cam][5], tuple(tile),
                           interpolation=cv2.INTER_AREA)
        if k == 0:
            image = draw_labels(image, drive.labels[cam][5],
                                tile[0] / size[0])
        caption = ['labels (ignore regions shaded)', 'day, clear',
                   'dusk, rain', 'night, headlights', 'day, fog',
                   'rig: front_left camera'][k]
        band = image[tile[1] - 26:tile[1] - 4, 4:12 + 9 * len(caption)]
        band[:] = (band * 0.35).astype(np.uint8)
        cv2.putText(image, caption, (8, tile[1] - 10),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(image)
    grid = np.concatenate([np.concatenate(tiles[:3], 1),
                           np.concatenate(tiles[3:], 1)], 0)
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    cv2.imwrite(path, grid[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path
