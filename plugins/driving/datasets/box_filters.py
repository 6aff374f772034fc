"""Box filters set by config: boxes too small, too truncated, too occluded
or not visible enough become *ignore regions* (neither positives nor
negatives), never plain background.

Config (``filters=dict(...)`` of every driving dataset)::

    filters=dict(min_height=25, max_truncation=0.5, max_occlusion=1)

Attributes come from each reader, normalised to numbers:

* ``truncated``: KITTI's float 0..1; BDD100K's boolean as 0 or 1.
* ``occluded``: KITTI's level 0 (fully visible), 1 (partly), 2 (largely),
  3 (unknown); BDD100K's boolean as 0 or 1.
* ``visibility``: nuScenes' bins as their lower bound: v0-40 -> 0.0,
  v40-60 -> 0.4, v60-80 -> 0.6, v80-100 -> 0.8.

A box without the attribute (NaN) passes that test. Sizes are pixel-edge
(:mod:`perception.data.boxes`): KITTI's "minimum bounding box height 25 px"
of its moderate level is ``bottom - top >= 25`` in KITTI's numbers, i.e.
``min_height=26`` here.
"""
from __future__ import annotations

import math

#: Lower bound of each nuScenes visibility level.
NUSCENES_VISIBILITY = {'v0-40': 0.0, 'v40-60': 0.4, 'v60-80': 0.6,
                       'v80-100': 0.8}


class BoxFilter:
    """Decides which positive boxes become ignore regions.

    Args:
        min_width: pixel-edge width below which a box is ignored.
        min_height: pixel-edge height below which a box is ignored.
        min_area: area (px^2) below which a box is ignored.
        max_truncation: ``truncated`` above this is ignored.
        max_occlusion: ``occluded`` above this is ignored (KITTI 3 =
            unknown counts as above 2).
        min_visibility: ``visibility`` below this is ignored.
    """

    def __init__(self, min_width: float = 0.0, min_height: float = 0.0,
                 min_area: float = 0.0, max_truncation: float | None = None,
                 max_occlusion: float | None = None,
                 min_visibility: float | None = None) -> None:
        self.min_width, self.min_height = float(min_width), float(min_height)
        self.min_area = float(min_area)
        self.max_truncation = max_truncation
        self.max_occlusion = max_occlusion
        self.min_visibility = min_visibility

    @classmethod
    def build(cls, cfg: dict | 'BoxFilter' | None) -> 'BoxFilter':
        """From a config dict (unknown keys are an error naming them)."""
        if isinstance(cfg, BoxFilter):
            return cfg
        cfg = dict(cfg or {})
        known = ('min_width', 'min_height', 'min_area', 'max_truncation',
                 'max_occlusion', 'min_visibility')
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ValueError(f"filters: unknown key(s) {', '.join(unknown)}; "
                             f"known: {', '.join(known)}")
        return cls(**cfg)

    def reason(self, box, truncated: float = math.nan,
               occluded: float = math.nan,
               visibility: float = math.nan) -> str | None:
        """Why ``box`` (pixel-edge xyxy) becomes an ignore region, or None.
        """
        w, h = float(box[2] - box[0]), float(box[3] - box[1])
        if w < self.min_width:
            return 'min_width'
        if h < self.min_height:
            return 'min_height'
        if w * h < self.min_area:
            return 'min_area'
        if (self.max_truncation is not None and not math.isnan(truncated)
                and truncated > self.max_truncation):
            return 'max_truncation'
        if (self.max_occlusion is not None and not math.isnan(occluded)
                and occluded > self.max_occlusion):
            return 'max_occlusion'
        if (self.min_visibility is not None and not math.isnan(visibility)
                and visibility < self.min_visibility):
            return 'min_visibility'
        return None

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v}' for k, v in vars(self).items()
                         if v not in (None, 0.0))
        return f'BoxFilter({args})'
