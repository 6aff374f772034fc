"""Every picture perception draws: samples as the pipeline delivers them
(``perception browse``), predictions (``perception test --show-dir``), and
the primitives plugins draw with (boxes, windowed CT panels, palette).

Importing it registers :class:`PredictionPicturesHook` in ``HOOKS``.
"""
from perception.visualization.browse import browse, find_windows
from perception.visualization.draw import (
                                           IGNORE_COLOUR,
                                           PALETTE,
                                           draw_boxes,
                                           render_sample,
                                           to_panels,
)
from perception.visualization.predictions import PredictionPicturesHook

__all__ = [
    'browse', 'find_windows', 'IGNORE_COLOUR', 'PALETTE', 'draw_boxes',
    'image_grid', 'normalized_to_rgb', 'render_sample', 'to_panels',
    'PredictionPicturesHook'
]
