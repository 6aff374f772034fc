"""``perception browse CONFIG``: pictures of samples exactly as the
pipeline delivers them (after augmentation), to check data before training
(mmdet's ``browse_dataset``).

Each picture shows the image (CT windowed per the config's
``data_preprocessor.windows``, one panel per window), every box in its
class colour with its label, and ignore regions shaded and hatched in grey.
The dataset is built through ``perception.registry.DATASETS`` directly; no
model or runner is needed.

Pictures are named and captioned after the sample's file, unless the
config's privacy guard hides its path (a private ``data_root``, see
:mod:`perception.engine.privacy`): then by series UID and slice index (a
digest of the UID in the file name), or by a digest of the path.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np

from perception.commands import Command
from perception.registry import COMMANDS, DATASETS

#: Box colours by label (colour-blind-safe Okabe-Ito first, then more).
PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
           (0, 114, 178), (213, 94, 0), (204, 121, 167), (255, 255, 255),
           (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255)]
IGNORE_COLOUR = (150, 150, 150)


def find_windows(cfg) -> list:
    """CT windows of the config's data preprocessor ([] when none)."""
    for holder in (cfg.get('model') or {}, cfg):
        pre = holder.get('data_preprocessor') if hasattr(holder,
                                                         'get') else None
        if pre and pre.get('windows'):
            return [tuple(w) for w in pre['windows']]
    return []


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
    """A PIL image of one packed sample: panels side by side, boxes drawn on
    each panel, ignore regions shaded, and a caption strip."""
    from PIL import Image, ImageDraw
    panels = to_panels(inputs, windows)
    h, w = panels[0].shape[:2]
    sheet = Image.new('RGB', (w * len(panels), h + 18), (0, 0, 0))
    gt = data_sample.get('gt_instances', None)
    for p, panel in enumerate(panels):
        image = Image.fromarray(panel).convert('RGBA')
        if gt is not None and len(gt) > 0:
            image = _draw_boxes(image, gt, classes)
        sheet.paste(image.convert('RGB'), (p * w, 0))
    draw = ImageDraw.Draw(sheet)
    if windows:
        for p, (c, ww) in enumerate(windows):
            draw.text((p * w + 3, 3), f'window C{c:g} W{ww:g}',
                      fill=(255, 255, 0))
    draw.text((3, h + 3), caption[:200], fill=(255, 255, 255))
    return sheet


def _draw_boxes(image, gt, classes):
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


def browse(config: str, split: str = 'train', n: int = 16,
           out: str | None = None, cfg_options: Sequence[str] = (),
           seed: int = 0) -> list[str]:
    """Write ``n`` pictures of ``split`` samples of ``config`` to ``out``.

    Returns:
        The paths written.
    """
    import random

    import torch

    from perception.engine.config import load_config
    cfg = load_config(config, cfg_options)
    key = f'{split}_dataloader'
    if key not in cfg or 'dataset' not in cfg[key]:
        splits = [k[:-len('_dataloader')] for k in cfg.keys()
                  if k.endswith('_dataloader')]
        raise ValueError(f"{config}: no {key}.dataset; splits in this config: "
                         f"{', '.join(splits) or 'none'}")
    from perception.engine.privacy import (redactor_for, sample_caption,
                                           sample_name)
    redactor = redactor_for(cfg)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = DATASETS.build(cfg[key]['dataset'])
    classes = tuple((getattr(dataset, 'metainfo', None) or {}).get(
        'classes') or ())
    windows = find_windows(cfg)
    out = out or os.path.join('work_dirs', 'browse', os.path.splitext(
        os.path.basename(config))[0])
    os.makedirs(out, exist_ok=True)
    written = []
    for i in range(min(n, len(dataset))):
        packed = dataset[i]
        sample = packed['data_samples']
        meta = sample.metainfo
        path = str(meta.get('img_path', f'sample{i}'))
        caption = (f"{sample_caption(path, meta, redactor)}  "
                   f"{tuple(meta.get('img_shape', ()))}"
                   f"  flip={meta.get('flip', '-')}  scale="
                   + ','.join(f'{s:.2f}' for s in meta.get('scale_factor',
                                                             (1, 1))))
        picture = render_sample(packed['inputs'], sample, classes, windows,
                                caption)
        path = os.path.join(
            out, f'{split}_{i:03d}_{sample_name(path, meta, redactor)}.png')
        picture.save(path)
        written.append(path)
    print(f'wrote {len(written)} pictures of {split} samples to {out}')
    return written


@COMMANDS.register_module(name='browse')
class BrowseCommand(Command):
    name = 'browse'
    help = ('write pictures of samples as the pipeline delivers them '
            '(boxes, labels, shaded ignore regions, windowed CT)')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('config', help='config file (.py)')
        parser.add_argument('--split', default='train',
                            help='train, val or test (default train)')
        parser.add_argument('--n', type=int, default=16,
                            help='number of samples (default 16)')
        parser.add_argument('--out', help='output folder (default '
                            'work_dirs/browse/<config name>)')
        parser.add_argument('--cfg-options', nargs='+', default=[],
                            metavar='KEY=VALUE',
                            help='override config entries, e.g. '
                            'train_dataloader.dataset.data_root=DIR')
        parser.add_argument('--seed', type=int, default=0,
                            help='random seed of the augmentation')

    def run(self, args: argparse.Namespace) -> int:
        # bad configs and data are reported in one line (file, field, why)
        try:
            browse(args.config, args.split, args.n, args.out,
                   args.cfg_options, args.seed)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            print(f'perception browse: error: {exc}', file=sys.stderr)
            return 2
        return 0
