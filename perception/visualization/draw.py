"""Drawing primitives every picture of perception uses: model inputs as
displayable panels (CT windowed, 16-bit stretched), boxes in class colours
with labels, ignore regions shaded and hatched, caption strips."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from perception.visualization.palette import IGNORE_COLOUR, PALETTE


def to_panels(inputs, windows: Sequence = ()) -> list[np.ndarray]:
    """(C, H, W) pipeline output -> displayable uint8 (H, W, 3) panels."""
    from perception.data.windowing import apply_windows
    array = inputs.detach().cpu().numpy() if hasattr(inputs, 'detach') \
        else np.asarray(inputs)
    array = array.transpose(1, 2, 0)
    if windows:
        windowed = apply_windows(array[..., 0].astype(np.float32), windows,
                                 axis=-1)
        return [np.repeat((windowed[..., i:i + 1] * 255).round().astype(
            np.uint8), 3, axis=2) for i in range(windowed.shape[-1])]
    if array.dtype != np.uint8:  # 16-bit or float: stretch for display
        lo, hi = float(array.min()), float(array.max())
        array = ((array - lo) / max(hi - lo, 1e-6) * 255).round()
        array = array.astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return [np.ascontiguousarray(array[..., :3])]


def render_sample(inputs, data_sample, classes: Sequence[str] = (),
                  windows: Sequence = (), caption: str = ''):
    """A PIL image of one packed sample: panels side by side, the label map
    blended in (ignored pixels left clear), boxes drawn on each panel,
    ignore regions shaded, and a caption strip."""
    from PIL import Image, ImageDraw
    panels = to_panels(inputs, windows)
    h, w = panels[0].shape[:2]
    sheet = Image.new('RGB', (w * len(panels), h + 18), (0, 0, 0))
    gt = data_sample.get('gt_instances', None)
    seg = data_sample.get('gt_sem_seg', None)
    for p, panel in enumerate(panels):
        if seg is not None and tuple(seg.shape) == (h, w):
            from perception.visualization.masks import overlay_mask
            panel = overlay_mask(panel, seg.data[0].cpu().numpy(),
                                 len(classes))
        image = Image.fromarray(panel).convert('RGBA')
        if gt is not None and len(gt) > 0:
            image = draw_boxes(image, gt, classes)
        sheet.paste(image.convert('RGB'), (p * w, 0))
    draw = ImageDraw.Draw(sheet)
    if windows:
        for p, (c, ww) in enumerate(windows):
            draw.text((p * w + 3, 3), f'window C{c:g} W{ww:g}',
                      fill=(255, 255, 0))
    draw.text((3, h + 3), caption[:200], fill=(255, 255, 255))
    return sheet


def draw_boxes(image, gt, classes: Sequence[str] = ()):
    """``gt`` (InstanceData: bboxes, labels, optional ignore_flags) drawn on
    an RGBA PIL image; returns the new image."""
    from PIL import Image, ImageDraw
    boxes = gt.bboxes.detach().cpu().numpy() if hasattr(
        gt.bboxes, 'detach') else np.asarray(gt.bboxes)
    labels = np.asarray(gt.labels.cpu() if hasattr(gt.labels, 'cpu')
                        else gt.labels).astype(int)
    ignore = np.asarray(gt.ignore_flags.cpu() if 'ignore_flags' in gt
                        else np.zeros(len(boxes), bool)).astype(bool)
    shade = Image.new('RGBA', image.size, (0, 0, 0, 0))
    sdraw = ImageDraw.Draw(shade)
    for (x1, y1, x2, y2), flag in zip(boxes, ignore):
        if flag:  # pixel-edge box -> last covered pixel is x2 - 1
            sdraw.rectangle([x1, y1, x2 - 1, y2 - 1],
                            fill=IGNORE_COLOUR + (110, ))
            for off in range(int(x1 - (y2 - y1)), int(x2), 8):
                sdraw.line([(off, y2 - 1), (off + (y2 - y1), y1)],
                           fill=IGNORE_COLOUR + (200, ), width=1)
    # hatch lines overshoot the box: keep only what is inside ignore boxes
    mask = Image.new('L', image.size, 0)
    mdraw = ImageDraw.Draw(mask)
    for (x1, y1, x2, y2), flag in zip(boxes, ignore):
        if flag:
            mdraw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=255)
    clipped = Image.new('RGBA', image.size, (0, 0, 0, 0))
    clipped.paste(shade, (0, 0), mask)
    image = Image.alpha_composite(image, clipped)
    draw = ImageDraw.Draw(image)
    for (x1, y1, x2, y2), label, flag in zip(boxes, labels, ignore):
        name = classes[label] if 0 <= label < len(classes) else (
            'any' if label < 0 else str(label))
        colour = IGNORE_COLOUR if flag else PALETTE[label % len(PALETTE)]
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour + (255, ),
                       width=1 if flag else 2)
        text = f'ignore:{name}' if flag else name
        ty = y1 - 11 if y1 >= 11 else y1 + 1
        draw.rectangle([x1, ty, x1 + 6 * len(text) + 2, ty + 10],
                       fill=(0, 0, 0, 160))
        draw.text((x1 + 1, ty), text, fill=colour + (255, ))
    return image


def normalized_to_rgb(images, mean=None, std=None,
                      windowed: bool = False) -> np.ndarray:
    """Network input (B, C, H, W), normalized by ``mean``/``std``, back to
    displayable uint8 (B, H, W, 3): windowed CT ([0, 1] before
    normalization) is scaled to 0..255 and its first channel shown in grey;
    images other than 3-channel show their first channel."""
    import torch
    x = images.detach().float().cpu()
    if mean is not None and std is not None and len(mean) == x.shape[1]:
        x = x * torch.as_tensor(std).view(1, -1, 1, 1).cpu() + \
            torch.as_tensor(mean).view(1, -1, 1, 1).cpu()
    x = (x * (255.0 if windowed else 1.0)).clamp(0, 255).round().to(
        torch.uint8)
    x = x if x.shape[1] == 3 else x[:, :1].expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 2,
               background: tuple[int, int, int] = (255, 255, 255)
               ) -> np.ndarray:
    """Tile equally sized uint8 (H, W, 3) panels into one picture, a list of
    panels per row, ``gap`` pixels of ``background`` between them."""
    height, width = rows[0][0].shape[:2]
    cols = max(len(row) for row in rows)
    grid = np.empty((len(rows) * (height + gap), cols * (width + gap), 3),
                    np.uint8)
    grid[:] = background
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            y, x = r * (height + gap), c * (width + gap)
            grid[y:y + height, x:x + width] = panel
    return grid


def draw_detections(image: np.ndarray, boxes, labels, scores=None,
                    classes: Sequence[str] = (), thickness: int = 0
                    ) -> np.ndarray:
    """Detections drawn on a copy of an RGB uint8 (H, W, 3) frame, fast
    enough for every frame of a video (OpenCV, no alpha compositing):
    class-coloured boxes (pixel-edge xyxy in the frame's pixels) with
    ``name score`` labels.

    Args:
        thickness: line width in pixels (0: about 1/400 of the frame's
            larger side, at least 2).
    """
    import cv2
    canvas = np.ascontiguousarray(image[..., :3] if image.ndim == 3 else
                                  np.repeat(image[..., None], 3, axis=2))
    canvas = canvas.copy()
    boxes = np.asarray(boxes.detach().cpu() if hasattr(boxes, 'detach')
                       else boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels.cpu() if hasattr(labels, 'cpu') else labels
                        ).astype(int).reshape(-1)
    scores = None if scores is None else np.asarray(
        scores.cpu() if hasattr(scores, 'cpu') else scores).reshape(-1)
    size = max(canvas.shape[:2])
    width = thickness or max(2, size // 400)
    font = max(0.35, size / 1600)
    for i, ((x1, y1, x2, y2), label) in enumerate(zip(boxes, labels)):
        colour = PALETTE[label % len(PALETTE)]
        top_left = (int(round(x1)), int(round(y1)))
        bottom_right = (int(round(x2)) - 1, int(round(y2)) - 1)
        cv2.rectangle(canvas, top_left, bottom_right, colour, width)
        name = classes[label] if 0 <= label < len(classes) else str(label)
        text = name if scores is None else f'{name} {scores[i]:.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                         font, 1)
        ty = top_left[1] - 2 if top_left[1] >= th + base + 2 else \
            top_left[1] + th + base + 2
        cv2.rectangle(canvas, (top_left[0], ty - th - base),
                      (top_left[0] + tw + 2, ty + 1), (0, 0, 0), -1)
        cv2.putText(canvas, text, (top_left[0] + 1, ty - base + 1),
                    cv2.FONT_HERSHEY_SIMPLEX, font, colour, 1, cv2.LINE_AA)
    return canvas
