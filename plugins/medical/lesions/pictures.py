"""Pictures of findings: the windowed slice with the finding's box, drawn
with the core visualization primitives (no patient data on them)."""
from __future__ import annotations

import numpy as np


def finding_picture(image: np.ndarray, finding: dict, best: dict,
                    window=(-600.0, 1500.0), min_width: int = 320):
    """A PIL picture of ``finding`` on its strongest slice.

    Args:
        image: the slice, float32 (H, W) in HU.
        finding: a finding dict (``diameter_mm``, ``score``,
            ``slice_range``, ``center_lps``).
        best: its member on this slice (``box`` in source pixels).
        window: (center, width) HU.
        min_width: small slices are enlarged (nearest, by a whole factor)
            to at least this width, for legibility.
    """
    import torch
    from PIL import Image, ImageDraw

    from perception.structures import make_instances
    from perception.visualization import draw_boxes, to_panels
    panel = to_panels(np.asarray(image, np.float32)[None], [window])[0]
    scale = max(1, -(-min_width // panel.shape[1]))
    panel = np.repeat(np.repeat(panel, scale, 0), scale, 1)
    box = np.asarray(best['box'], np.float32)[None] * scale
    # at least one pixel each way (draw_boxes draws x1..x2-1)
    box[:, 2:] = np.maximum(box[:, 2:], box[:, :2] + 1)
    instances = make_instances(torch.from_numpy(box),
                               torch.zeros(1, dtype=torch.int64))
    picture = draw_boxes(Image.fromarray(panel).convert('RGBA'), instances,
                         [f"{finding.get('class_name', 'lesion')} "
                          f"{finding['score']:.2f}"]).convert('RGB')
    h, w = panel.shape[:2]
    sheet = Image.new('RGB', (w, h + 30), (0, 0, 0))
    sheet.paste(picture, (0, 0))
    x, y, z = finding['center_lps']
    lo, hi = finding['slice_range']
    text = (f"d {finding['diameter_mm']:.1f} mm  LPS ({x:.1f}, {y:.1f}, "
            f"{z:.1f})  slices {lo}-{hi}  W{window[1]:g} C{window[0]:g}")
    ImageDraw.Draw(sheet).text((3, h + 3), text, fill=(255, 255, 255))
    ImageDraw.Draw(sheet).text((3, h + 15), f"slice {best['slice_index']}",
                               fill=(200, 200, 200))
    return sheet
