"""What ``perception test`` writes besides metrics: predictions as JSON
(``--out``) and pictures of predictions (``--show-dir``).

Both follow the run's privacy guard (:mod:`perception.engine.privacy`): in a
guarded run, strings holding private values (sample paths under a private
``data_root``) are redacted in the JSON, and pictures are named by series
UID digest and slice index, or a digest, instead of the source file name.
Unguarded runs keep readable names.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import print_log

from perception.data.boxes import transform_boxes
from perception.engine.privacy import current_redactor, sample_name
from perception.registry import HOOKS, METRICS


def to_jsonable(value: Any) -> Any:
    """Tensors, arrays and data elements -> lists, numbers and dicts."""
    if hasattr(value, 'to_dict') and not isinstance(value, dict):
        value = value.to_dict()
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


@METRICS.register_module()
class DumpPredictionsJSON(BaseMetric):
    """Write every prediction (a data sample as a dict of lists) to a JSON
    file: pickle-free, so it can be read anywhere. In a guarded run every
    string is redacted (``img_path`` -> ``<redacted:...>``; ``series_uid``
    and ``slice_index`` still say which slice it was).

    Args:
        out_file: path of the JSON file.
    """

    def __init__(self, out_file: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_file = out_file

    def process(self, data_batch, data_samples: Sequence) -> None:
        # redacted here, before ranks exchange results through temp files
        redactor = current_redactor()
        records = (to_jsonable(s) for s in data_samples)
        self.results.extend(records if redactor is None else
                            (redactor.value(r) for r in records))

    def compute_metrics(self, results: list) -> dict:
        folder = os.path.dirname(os.path.abspath(self.out_file))
        os.makedirs(folder, exist_ok=True)
        with open(self.out_file, 'w', encoding='utf-8') as f:
            json.dump(results, f)
        print_log(f'wrote {len(results)} predictions to {self.out_file}',
                  logger='current')
        return {}


@HOOKS.register_module()
class PredictionPicturesHook(Hook):
    """Save test images with the predicted (and true) label and predicted
    boxes drawn on them to ``out_dir``, named ``00000_<file stem>.png``, or
    ``00000_series-<digest>-slice-0003.png`` / ``00000_sample-<digest>.png``
    when the run's privacy guard hides the sample's path. Images PIL cannot
    read (DICOM) are drawn from the model's input instead.

    Args:
        out_dir: folder for the pictures.
        max_images: stop after this many pictures.
        score_thr: draw predicted boxes scoring at least this.
    """

    def __init__(self, out_dir: str, max_images: int = 64,
                 score_thr: float = 0.3) -> None:
        self.out_dir = out_dir
        self.max_images = max_images
        self.score_thr = score_thr
        self._written = 0

    def _classes(self, runner) -> Sequence[str]:
        dataset = getattr(runner.test_dataloader, 'dataset', None)
        return tuple(getattr(dataset, 'metainfo', {}).get('classes', ()))

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        if self._written >= self.max_images or not outputs:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        classes = self._classes(runner)
        redactor = getattr(runner, 'redactor', None)
        inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                        dict) else None
        for j, sample in enumerate(outputs):
            if self._written >= self.max_images:
                return
            path = sample.get('img_path') if hasattr(sample, 'get') else None
            if not path or not os.path.isfile(path):
                continue
            image, scaled = self._image(path, inputs, j)
            if image is None:
                continue
            name = sample_name(path, sample.metainfo, redactor)
            self._draw(sample, image, scaled, classes, name)
            self._written += 1

    @staticmethod
    def _image(path: str, inputs, j: int):
        """(RGB picture, whether it is the resized model input) or (None,
        False) when neither the file nor the input can be shown."""
        from PIL import Image, UnidentifiedImageError
        try:
            return Image.open(path).convert('RGB'), False
        except (UnidentifiedImageError, OSError):
            if inputs is None or j >= len(inputs):
                return None, False
        from perception.data.browser import to_panels
        return Image.fromarray(to_panels(inputs[j])[0]), True

    def _draw(self, sample, image, scaled: bool, classes: Sequence[str],
              stem: str) -> None:
        from PIL import ImageDraw
        draw = ImageDraw.Draw(image)
        name = (lambda i: classes[i] if 0 <= i < len(classes) else str(i))
        lines = []
        if 'pred_score' in sample:
            score = sample.pred_score
            label = int(score.argmax())
            lines.append(f'pred {name(label)} {float(score[label]):.2f}')
        if 'gt_label' in sample:
            lines.append(f'gt {name(int(sample.gt_label[0]))}')
        if 'pred_instances' in sample:
            inst = sample.pred_instances
            boxes = inst.bboxes.detach().cpu().numpy()
            homography = sample.get('homography_matrix')
            if not scaled and homography is not None:
                # back to the original image through what the transforms
                # recorded (resize, flip, crop...)
                boxes = transform_boxes(boxes, np.linalg.inv(homography))
            for box, label, score in zip(boxes, inst.labels, inst.scores):
                if float(score) < self.score_thr:
                    continue
                x0, y0, x1, y1 = box.tolist()
                draw.rectangle([x0, y0, x1 - 1, y1 - 1],
                               outline=(255, 64, 0))
                draw.text((x0 + 2, y0 + 1),
                          f'{name(int(label))} {float(score):.2f}',
                          fill=(255, 64, 0))
        for i, line in enumerate(lines):
            draw.text((2, 2 + 10 * i), line, fill=(255, 255, 0))
        out = os.path.join(self.out_dir, f'{self._written:05d}_{stem}.png')
        image.save(out)
