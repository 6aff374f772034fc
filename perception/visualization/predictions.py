"""Pictures of predictions written by ``perception test --show-dir``:
the predicted (and true) label, the predicted boxes (orange) over the
true ones (green) and the predicted label map (blended, with a legend),
drawn on the source image (mapped back through the recorded geometry).
Small images (CT slices of 256 px) are enlarged by a whole factor so boxes
and their labels stay readable; a CT input is shown as its centre slice in
the model's first window, grey.

Pictures follow the run's privacy guard (:mod:`perception.engine.privacy`):
in a guarded run they are named by series UID digest and slice index, or a
digest, instead of the source file name.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from perception.data.geometry import (
    boxes_to_current,
    boxes_to_source,
    pred_boxes_to_source,
    preds_in_source,
)
from perception.data.image_io import ImageReadError, read_image
from perception.data.seg_geometry import seg_to_current, seg_to_source
from perception.engine.privacy import sample_name
from perception.registry import HOOKS
from perception.visualization.draw import to_panels
from perception.visualization.masks import draw_legend, overlay_mask


@HOOKS.register_module()
class PredictionPicturesHook(Hook):
    """Save test images with the predicted (and true) label and predicted
    boxes drawn on them to ``out_dir``, named ``00000_<file stem>.png``, or
    ``00000_series-<digest>-slice-0003.png`` / ``00000_sample-<digest>.png``
    when the run's privacy guard hides the sample's path. Images PIL cannot
    read (DICOM) are drawn from the model's input instead. Under torchrun
    only rank 0 writes (pictures of its share of the test set), so ranks
    never overwrite each other's files.

    Args:
        out_dir: folder for the pictures.
        max_images: stop after this many pictures.
        score_thr: draw predicted boxes scoring at least this.
        min_size: enlarge pictures whose long side is shorter than this by
            the whole factor that brings them closest to it (0: never).
    """

    def __init__(self, out_dir: str, max_images: int = 64,
                 score_thr: float = 0.3, min_size: int = 512) -> None:
        self.out_dir = out_dir
        self.max_images = max_images
        self.score_thr = score_thr
        self.min_size = min_size
        self._written = 0

    @staticmethod
    def _windows(runner) -> list:
        """The CT windows of the model's data preprocessor ([] if none)."""
        model = getattr(runner, 'model', None)
        model = getattr(model, 'module', model)  # DDP
        pre = getattr(model, 'data_preprocessor', None)
        return list(getattr(pre, 'windows', None) or [])

    def _classes(self, runner) -> Sequence[str]:
        dataset = getattr(runner.test_dataloader, 'dataset', None)
        return tuple(getattr(dataset, 'metainfo', {}).get('classes', ()))

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        if self._written >= self.max_images or not outputs or \
                not is_main_process():
            return
        os.makedirs(self.out_dir, exist_ok=True)
        classes = self._classes(runner)
        windows = self._windows(runner)
        redactor = getattr(runner, 'redactor', None)
        inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                        dict) else None
        for j, sample in enumerate(outputs):
            if self._written >= self.max_images:
                return
            path = sample.get('img_path') if hasattr(sample, 'get') else None
            if not path or not os.path.isfile(path):
                continue
            image, scaled = self._image(path, inputs, j, windows)
            if image is None:
                continue
            name = sample_name(path, sample.metainfo, redactor)
            self._draw(sample, image, scaled, classes, name)
            self._written += 1

    @staticmethod
    def _image(path: str, inputs, j: int, windows: Sequence = ()):
        """(RGB picture, whether it is the resized model input) or (None,
        False) when neither the file nor the input can be shown. A windowed
        (CT) input shows its centre slice in the first window."""
        from PIL import Image
        try:  # the one image reader (16-bit shown by its documented rule)
            return Image.fromarray(read_image(path)), False
        except ImageReadError:
            if inputs is None or j >= len(inputs):
                return None, False
        array = inputs[j]
        if windows:
            centre = array.shape[0] // 2
            return Image.fromarray(to_panels(
                array[centre:centre + 1], windows[:1])[0]), True
        return Image.fromarray(to_panels(array)[0]), True

    def _enlarged(self, image):
        """``image`` enlarged by a whole factor (nearest: pixels stay
        pixels) when it is smaller than ``min_size``, and that factor."""
        factor = max(1, round(self.min_size / max(image.size))) \
            if self.min_size and max(image.size) < self.min_size else 1
        if factor == 1:
            return image, 1
        from PIL import Image
        return image.resize((image.width * factor, image.height * factor),
                            Image.NEAREST), factor

    @staticmethod
    def _draw_mask(sample, image, scaled: bool, classes: Sequence[str]):
        """The predicted label map blended over the picture (mapped to the
        model input when the picture is the model input), with a legend."""
        from PIL import Image
        labels = sample.pred_sem_seg.data.reshape(
            sample.pred_sem_seg.data.shape[-2:])
        size = (image.height, image.width)
        if preds_in_source(sample) != (not scaled):
            labels = (seg_to_current(sample, labels, size) if scaled else
                      seg_to_source(sample, labels, 'nearest', size))
        labels = labels.cpu().numpy()
        if labels.shape != size:  # a picture of another size: say so
            return image
        background = [i for i, name in enumerate(classes)
                      if name == 'background']  # the picture shows it
        blended = overlay_mask(np.asarray(image.convert('RGB')), labels,
                               len(classes), skip=background)
        return draw_legend(Image.fromarray(blended), labels, classes,
                           skip=background)

    def _draw(self, sample, image, scaled: bool, classes: Sequence[str],
              stem: str) -> None:
        from PIL import ImageDraw
        draw = ImageDraw.Draw(image)

        def name(i: int) -> str:
            return classes[i] if 0 <= i < len(classes) else str(i)

        if 'pred_sem_seg' in sample:
            image = self._draw_mask(sample, image, scaled, classes)
        image, factor = self._enlarged(image)
        draw = ImageDraw.Draw(image)
        lines = []
        if 'pred_score' in sample:
            score = sample.pred_score
            label = int(score.argmax())
            lines.append(f'pred {name(label)} {float(score[label]):.2f}')
        if 'gt_label' in sample:
            lines.append(f'gt {name(int(sample.gt_label[0]))}')
        gt = sample.get('gt_instances', None)
        if gt is not None and len(gt) > 0:  # the truth, in current pixels
            boxes = gt.bboxes if scaled else boxes_to_source(sample,
                                                             gt.bboxes)
            for box in self._scaled(boxes, factor):
                draw.rectangle(box, outline=(0, 200, 0))
        if 'pred_instances' in sample:
            inst = sample.pred_instances
            # the source image: back through what the transforms recorded
            # (resize, flip, crop...); the model input needs no mapping
            if scaled:  # drawn on the model input
                boxes = boxes_to_current(sample, inst.bboxes) if \
                    preds_in_source(sample) else inst.bboxes.detach().cpu(
                    ).numpy()
            else:
                boxes = pred_boxes_to_source(sample, inst.bboxes)
            for box, label, score in zip(self._scaled(boxes, factor),
                                         inst.labels, inst.scores):
                if float(score) < self.score_thr:
                    continue
                x0, y0 = box[:2]
                draw.rectangle(box, outline=(255, 64, 0))
                draw.text((x0 + 2, y0 + 1),
                          f'{name(int(label))} {float(score):.2f}',
                          fill=(255, 64, 0))
        for i, line in enumerate(lines):
            draw.text((2, 2 + 10 * i), line, fill=(255, 255, 0))
        out = os.path.join(self.out_dir, f'{self._written:05d}_{stem}.png')
        image.save(out)

    @staticmethod
    def _scaled(boxes, factor: int) -> list[list[float]]:
        """Pixel-edge xyxy boxes -> PIL rectangles (inclusive corners) on a
        picture enlarged ``factor`` times."""
        if hasattr(boxes, 'detach'):
            boxes = boxes.detach().cpu().numpy()
        return [[x0 * factor, y0 * factor, x1 * factor - 1, y1 * factor - 1]
                for x0, y0, x1, y1 in np.asarray(boxes, float).reshape(
                    -1, 4).tolist()]
