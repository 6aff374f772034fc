"""What ``perception infer`` writes for a segmentor or a classifier (the
detector's writers are :mod:`perception.deploy.writers`):

* ``predictions.json``: the images as ``detections.json`` lists them
  (sizes, stream time, camera, file name without its folder; CT slices by
  series UID and slice index), and per image: for a segmentor its label
  PNG under ``masks/`` (one value per source pixel: the class index, 8-bit
  up to 256 classes, else 16-bit) and the pixel count of each class
  present; for a classifier the top-1 class and its score with every
  class's score;
* the pictures (or MP4 frames): the class map blended over the frame with
  a legend, or the top-1 class written on it.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from perception.data.geometry import sample_meta
from perception.deploy.writers import DETECTIONS_FILE, DetectionsJson

__all__ = ['PREDICTIONS_FILE', 'MASKS_DIR', 'DensePredictionsJson',
           'predictions_writer', 'draw_prediction', 'picture_name']

PREDICTIONS_FILE = 'predictions.json'
MASKS_DIR = 'masks'


def picture_name(frame: Any, sample: Any = None) -> str:
    """The file stem of a frame's picture and mask: the image file's own
    name, ``slice_NNNN`` for CT (folders are often named after patients),
    else ``<camera>_<frame index>``."""
    from perception.data.frames import is_ct_frame
    camera = ''.join(c if c.isalnum() or c in '-_' else '_'
                     for c in str(frame.camera)) or 'cam0'
    if is_ct_frame(frame):
        return f"slice_{int(frame.meta.get('slice_index', frame.index)):04d}"
    path = frame.meta.get('path') or frame.meta.get('img_path') or (
        sample_meta(sample, 'img_path') if sample is not None else None)
    return (os.path.splitext(os.path.basename(str(path)))[0] if path
            else f'{camera}_{frame.index:06d}')


class DensePredictionsJson(DetectionsJson):
    """``predictions.json`` of a segmentor or classifier (see the module
    docstring); the same interface as :class:`DetectionsJson`.

    Args:
        path: the JSON file; masks go to ``masks/`` beside it.
        class_names: the model's classes.
        info: run information (model, source, backend...).
        task: ``'segmentation'`` or ``'classification'``.
    """

    def __init__(self, path: str, class_names: Sequence[str], info: dict,
                 task: str) -> None:
        super().__init__(path, class_names, info)
        self.task = task
        self.masks_dir = os.path.join(os.path.dirname(os.path.abspath(path)),
                                      MASKS_DIR)
        self.names: set[str] = set()

    def add(self, frame: Any, sample: Any) -> int:
        """Record one frame's prediction (and write its mask); returns 1."""
        record, _ = self.image_record(frame, sample)
        if self.task == 'segmentation':
            record.update(self._mask(frame, sample))
        else:
            scores = sample.pred_score.detach().cpu().float().numpy()
            label = int(sample.pred_label.reshape(-1)[0])
            record.update(label=label, score=round(float(scores[label]), 5),
                          scores=[round(float(v), 5) for v in scores])
            name = self._class_name(label)
            if name is not None:
                record['class_name'] = name
        self._spool('images', record)
        self.num_images += 1
        return 1

    def _class_name(self, label: int) -> str | None:
        return self.categories[label]['name'] \
            if 0 <= label < len(self.categories) else None

    def _mask(self, frame: Any, sample: Any) -> dict:
        from PIL import Image
        labels = sample.pred_sem_seg.data.reshape(
            sample.pred_sem_seg.data.shape[-2:]).cpu().numpy()
        name = picture_name(frame, sample)
        if name in self.names:  # two cameras, one file name
            name = f'{name}_{self.num_images:06d}'
        self.names.add(name)
        os.makedirs(self.masks_dir, exist_ok=True)
        file = os.path.join(self.masks_dir, f'{name}.png')
        if labels.max(initial=0) < 256:
            Image.fromarray(labels.astype(np.uint8)).save(file)
        else:
            Image.fromarray(labels.astype(np.uint16)).save(file)
        counts = np.bincount(labels.reshape(-1).astype(np.int64))
        return dict(mask_file=f'{MASKS_DIR}/{name}.png', pixels={
            str(k): int(n) for k, n in enumerate(counts) if n})


def predictions_writer(out: str, task: str, class_names: Sequence[str],
                       info: dict) -> DetectionsJson:
    """The JSON writer of a run of a ``task`` model into ``out``:
    ``detections.json`` for a detector, ``predictions.json`` otherwise."""
    if task == 'detection':
        return DetectionsJson(os.path.join(out, DETECTIONS_FILE),
                              class_names, info)
    return DensePredictionsJson(os.path.join(out, PREDICTIONS_FILE),
                                class_names, info, task)


def draw_prediction(image: np.ndarray, sample: Any,
                    classes: Sequence[str]) -> np.ndarray:
    """A picture of ``sample``'s prediction on ``image`` (RGB uint8 of the
    source): boxes, the class map with a legend, or the top-1 class."""
    from perception.visualization.draw import draw_detections
    if 'pred_sem_seg' in sample:
        from PIL import Image

        from perception.visualization.masks import draw_legend, overlay_mask
        labels = sample.pred_sem_seg.data.reshape(
            sample.pred_sem_seg.data.shape[-2:]).cpu().numpy()
        picture = Image.fromarray(overlay_mask(image, labels, len(classes)))
        return np.asarray(draw_legend(picture, labels, classes))
    if 'pred_score' in sample:
        import cv2
        label = int(sample.pred_label.reshape(-1)[0])
        name = classes[label] if 0 <= label < len(classes) else str(label)
        text = f'{name} {float(sample.pred_score[label]):.2f}'
        canvas = np.ascontiguousarray(image).copy()
        scale = max(0.4, max(canvas.shape[:2]) / 800)
        cv2.putText(canvas, text, (4, int(20 * scale) + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2,
                    cv2.LINE_AA)
        return canvas
    from perception.deploy.writers import detections_of
    boxes, labels, scores = detections_of(sample)
    return draw_detections(image, boxes, labels, scores, classes)
