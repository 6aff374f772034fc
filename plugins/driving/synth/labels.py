"""Labels of synthetic drives, exact by construction.

Every labeled object's polygons are rasterised once more, alone and
unoccluded, with the same fixed-point coordinates and the same rasteriser
as the image, over a canvas that reaches beyond the image. From that
silhouette and the renderer's id buffer follow:

* the 2D box: the silhouette's pixels inside the image, in pixel-edge xyxy
  (a box covering pixels 0..9 is [0, 10]), as the data-sample contract says;
* truncation: the fraction of the silhouette outside the image (parts
  behind the camera's near plane are not counted);
* occlusion: the fraction of the in-image silhouette hidden by nearer
  surfaces (other objects and scenery: trees, poles, buildings);
* ``ignore``: too small (height under ``min_height`` pixels) or too hidden
  (occlusion over ``max_occlusion``): neither positive nor negative for
  training and evaluation. Objects with no visible pixel get no label.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from .render import SHIFT, View
from .scene import CameraModel, Scene


@dataclass
class ObjectLabel:
    """One labeled object in one image.

    Attributes:
        obj_id: id unique in the drive (the same object in every frame).
        category: class of the unified driving taxonomy.
        bbox: (x1, y1, x2, y2) pixel-edge, integers as floats.
        truncation, occlusion: fractions in [0, 1].
        visible_px: visible pixels.
        ignore: an ignore region (tiny or heavily occluded).
        dims: (height, width, length) metres.
        location: bottom centre in the camera frame (x right, y down,
            z forward), metres.
        rotation_y: KITTI yaw around the camera's y axis.
        alpha: KITTI observation angle.
        attributes: e.g. ``{'trafficLightColor': 'red'}``.
    """

    obj_id: int
    category: str
    bbox: tuple
    truncation: float
    occlusion: float
    visible_px: int
    ignore: bool
    dims: tuple = (0.0, 0.0, 0.0)
    location: tuple = (0.0, 0.0, 0.0)
    rotation_y: float = 0.0
    alpha: float = 0.0
    attributes: dict = field(default_factory=dict)


@dataclass
class FrameLabels:
    """Labels of one camera image."""

    camera: str
    frame: int
    timestamp_ns: int
    width: int
    height: int
    intrinsics: list
    objects: list[ObjectLabel]

    def to_dict(self) -> dict:
        return asdict(self)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _silhouette(fixed_list: list[np.ndarray]):
    """Mask of the union of polygons over their bounding box and the box's
    origin in pixels."""
    pts = np.concatenate(fixed_list)
    x0, y0 = (pts.min(axis=0) >> SHIFT) - 1
    x1, y1 = (pts.max(axis=0) >> SHIFT) + 2
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    off = np.array([x0 << SHIFT, y0 << SHIFT], np.int32)
    # Draw one polygon at a time: fillPoly with several polygons fills
    # their overlap by the even-odd rule, leaving holes.
    for f in fixed_list:
        cv2.fillPoly(mask, [f - off], 1, lineType=cv2.LINE_8, shift=SHIFT)
    return mask, int(x0), int(y0)


def compute_labels(scene: Scene, cam: CameraModel, view: View, frame: int,
                   min_height: float = 10.0, max_occlusion: float = 0.8
                   ) -> FrameLabels:
    """Labels of one rendered view (see the module doc)."""
    W, H = cam.width, cam.height
    objects = scene.objects()
    t = scene.time(frame)
    out = []
    for oid in sorted(view.polys):
        mask, x0, y0 = _silhouette(view.polys[oid])
        full = int(mask.sum())
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + mask.shape[1], W), min(y0 + mask.shape[0], H)
        if full == 0 or ix0 >= ix1 or iy0 >= iy1:
            continue
        inner = mask[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0].view(bool)
        in_image = int(inner.sum())
        if in_image == 0:
            continue
        visible = int((view.ids[iy0:iy1, ix0:ix1][inner] == oid).sum())
        if visible == 0:
            continue
        rows = np.flatnonzero(inner.any(axis=1))
        cols = np.flatnonzero(inner.any(axis=0))
        box = (float(ix0 + cols[0]), float(iy0 + rows[0]),
               float(ix0 + cols[-1] + 1), float(iy0 + rows[-1] + 1))
        occlusion = 1.0 - visible / in_image
        category, actor = objects[oid]
        label = ObjectLabel(
            oid, category, box, round(1.0 - in_image / full, 4),
            round(occlusion, 4), visible,
            bool(box[3] - box[1] < min_height or occlusion > max_occlusion))
        _add_3d(scene, actor, label, view, t)
        if actor.kind == 'traffic_light':
            label.attributes['trafficLightColor'] = actor.params['state']
        out.append(label)
    return FrameLabels(cam.name, frame, scene.timestamp_ns(frame), W, H,
                       cam.K.tolist(), out)


def _add_3d(scene: Scene, actor, label: ObjectLabel, view: View,
            t: float) -> None:
    """KITTI-style 3D box: dimensions, bottom centre and yaw in the camera
    frame."""
    R, p = scene.actor_pose(actor, t)
    w, h, length = actor.dims
    if actor.kind in ('traffic_light', 'traffic_sign'):
        lift = actor.params['height']
        p = p + np.array([0.0, lift - (h / 2 if actor.kind ==
                                       'traffic_sign' else 0.0), 0.0])
    loc = (p - view.C) @ view.R_wc
    heading = view.R_wc.T @ R[:, 2]
    ry = math.atan2(-heading[2], heading[0])
    label.dims = (round(h, 3), round(w, 3), round(length, 3))
    label.location = tuple(round(float(v), 3) for v in loc)
    label.rotation_y = round(_wrap(ry), 4)
    label.alpha = round(_wrap(ry - math.atan2(loc[0], loc[2])), 4)
