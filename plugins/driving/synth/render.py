"""Renderer of synthetic drives: numpy + OpenCV, one core.

A view is drawn in deferred passes: the ground (asphalt, markings, curbs,
paving) and the sky are computed per pixel from camera rays; then every
polygon of every actor is rasterised with ``cv2.fillPoly`` and a per-pixel
depth test (inverse depth is affine in the image for planar polygons), which
writes albedo, emission, a sun-shading factor, depth and the id of the
labeled object. Lighting (sun, sky, headlights, street lamps), weather,
motion blur, optics and sensor noise are applied last
(:mod:`.effects`). The labels are computed from the
same fixed-point polygons and the id buffer, so they match the pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from .actors import (
    LocalFrame,
    Poly,
    building_polys,
    lamp_polys,
    traffic_light_polys,
    traffic_sign_polys,
    vehicle_polys,
)
from .figures import pedestrian_polys, rider_polys, tree_polys
from .scene import CameraModel, Scene
from .semantics import BACKGROUND, UNLABELED, tag_polys

SHIFT = 4                   # fixed-point bits of cv2.fillPoly coordinates
NEAR = 0.3                  # near clipping plane, metres
GUARD = 4                   # polygons are clipped to GUARD image sizes around


@dataclass
class View:
    """What one camera saw at one frame, before effects.

    Attributes:
        albedo, emit: (H, W, 3) float32 surface colour and emitted light.
        shade: (H, W) float32 sun factor (n . l, ambient added later).
        depth: (H, W) float32 optical-axis depth in metres (inf for sky).
        ids: (H, W) int32 labeled-object id of the visible surface (0 none).
        polys: labeled object id -> fixed-point (SHIFT) int32 polygons in
            full-image pixel coordinates, exactly as rasterised.
        classes: (H, W) uint8 label-map class of the visible surface
            (:data:`.semantics.SEG_CLASSES`).
        drivable: (H, W) uint8 BDD100K drivable value (0 direct, 1
            alternative, 2 background).
    """

    albedo: np.ndarray
    emit: np.ndarray
    shade: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    R_wc: np.ndarray
    C: np.ndarray
    polys: dict[int, list[np.ndarray]] = field(default_factory=dict)
    classes: np.ndarray | None = None
    drivable: np.ndarray | None = None


def clip_halfspace(pts: np.ndarray, normal, offset: float) -> np.ndarray:
    """Sutherland-Hodgman: keep the part of a polygon where
    ``pts @ normal >= offset`` (any dimension)."""
    d = pts @ np.asarray(normal, np.float64) - offset
    if (d >= 0).all():
        return pts
    if (d < 0).all():
        return pts[:0]
    out = []
    n = len(pts)
    for i in range(n):
        j = (i + 1) % n
        if d[i] >= 0:
            out.append(pts[i])
        if (d[i] >= 0) != (d[j] >= 0):
            out.append(pts[i] + (pts[j] - pts[i]) * (d[i] / (d[i] - d[j])))
    return np.array(out)


@lru_cache(maxsize=8)
def pixel_rays(K_key: tuple, width: int, height: int) -> np.ndarray:
    """(H, W, 3) optical-frame rays through pixel centres with z = 1."""
    K = np.array(K_key).reshape(3, 3)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64),
                       np.arange(height, dtype=np.float64))
    return np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1],
                     np.ones_like(u)], axis=-1).astype(np.float32)


def scene_polys(scene: Scene, t: float, C: np.ndarray, fwd: np.ndarray
                ) -> list[Poly]:
    """Polygons of every actor near enough to matter for a camera at C."""
    polys: list[Poly] = []
    for a in scene.actors:
        before = len(polys)
        _actor_polys(polys, scene, a, t, C, fwd)
        tag_polys(polys[before:], a)
    return polys


def _actor_polys(polys: list[Poly], scene: Scene, a, t: float,
                 C: np.ndarray, fwd: np.ndarray) -> None:
    """Append the polygons of actor ``a`` if it is near enough."""
    if a.kind == 'building':
        if -60 < a.s0 - C[2] < 260 or -60 < a.s0 + a.dims[2] - C[2] < 260:
            polys += building_polys(scene, a)
        return
    R, p = scene.actor_pose(a, t)
    rel = p - C
    if np.hypot(rel[0], rel[2]) > 220 or rel @ fwd < -15:
        return
    if a.kind in ('car', 'truck', 'bus'):
        polys += vehicle_polys(scene, a, LocalFrame(R, p),
                               far=np.hypot(rel[0], rel[2]) > 35)
    elif a.kind == 'pedestrian':
        polys += pedestrian_polys(scene, a, R, p, C, t)
    elif a.kind in ('cyclist', 'motorcyclist'):
        polys += rider_polys(scene, a, R, p, C, t)
    elif a.kind == 'traffic_light':
        polys += traffic_light_polys(scene, a, LocalFrame(R, p), t)
    elif a.kind == 'traffic_sign':
        polys += traffic_sign_polys(scene, a, LocalFrame(R, p))
    elif a.kind == 'lamp':
        polys += lamp_polys(scene, a, LocalFrame(R, p))
    elif a.kind == 'tree':
        polys += tree_polys(scene, a, R, p, C)


def project_poly(pts_w: np.ndarray, R_wc: np.ndarray, C: np.ndarray,
                 K: np.ndarray, width: int, height: int):
    """World polygon -> (fixed-point int32 (N, 2) image points, camera-frame
    points after near clipping) or (None, None) when nothing is in front."""
    pc = clip_halfspace((pts_w - C) @ R_wc, (0.0, 0.0, 1.0), NEAR)
    if len(pc) < 3:
        return None, None
    uv = pc[:, :2] / pc[:, 2:3] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    for normal, off in (((1, 0), -GUARD * width), ((-1, 0),
                                                   -(GUARD + 1) * width),
                        ((0, 1), -GUARD * height), ((0, -1),
                                                    -(GUARD + 1) * height)):
        uv = clip_halfspace(uv, normal, off)
        if len(uv) < 3:
            return None, None
    return np.round(uv * (1 << SHIFT)).astype(np.int32), pc


def _inverse_depth_plane(pc: np.ndarray, K: np.ndarray):
    """Coefficients (a, b, c) with 1/z = a u + b v + c on the polygon's
    plane, or None for a polygon seen edge-on."""
    p = pc.tolist()

    def cross(a, b, c, d):     # (b - a) x (d - c) in plain floats
        e, f = [b[k] - a[k] for k in range(3)], [d[k] - c[k] for k in range(3)]
        return (e[1] * f[2] - e[2] * f[1], e[2] * f[0] - e[0] * f[2],
                e[0] * f[1] - e[1] * f[0])
    n = cross(p[0], p[1], p[0], p[2])
    if len(p) > 3 and sum(map(abs, n)) < 1e-9:   # thin: other diagonal
        n = cross(p[0], p[2], p[1], p[-1])
    d = n[0] * p[0][0] + n[1] * p[0][1] + n[2] * p[0][2]
    if abs(d) < 1e-9:
        return None
    # Ray r(u, v) = ((u - cx)/fx, (v - cy)/fy, 1); 1/z = n . r / d.
    a, b = n[0] / K[0, 0] / d, n[1] / K[1, 1] / d
    c = (n[2] - n[0] * K[0, 2] / K[0, 0] - n[1] * K[1, 2] / K[1, 1]) / d
    return a, b, c


def render_view(scene: Scene, cam: CameraModel, frame: int,
                textures) -> View:
    """Rasterise the scene for one camera and frame (no lighting yet)."""
    from .ground import draw_ground
    t = scene.time(frame)
    H, W, K = cam.height, cam.width, cam.K
    R_wc, C = scene.camera_pose(cam, t)
    rays = pixel_rays(tuple(K.ravel()), W, H)
    view = View(np.zeros((H, W, 3), np.float32), np.zeros((H, W, 3),
                                                          np.float32),
                np.zeros((H, W), np.float32), np.full((H, W), np.inf,
                                                      np.float32),
                np.zeros((H, W), np.int32), R_wc, C)
    view.classes = np.full((H, W), UNLABELED, np.uint8)
    view.drivable = np.full((H, W), BACKGROUND, np.uint8)
    draw_ground(scene, view, rays, textures)
    sun = textures.sun
    polys = scene_polys(scene, t, C, R_wc[:, 2])
    shadow = np.zeros((H, W), np.float32)
    for poly in polys:
        if poly.obj == -1:
            fixed, _ = project_poly(poly.pts, R_wc, C, K, W, H)
            if fixed is not None:
                cv2.fillPoly(shadow, [fixed], 1.0 - float(poly.albedo[0]),
                             lineType=cv2.LINE_8, shift=SHIFT)
    if shadow.any():
        shadow = cv2.GaussianBlur(shadow, (0, 0), 1.2)
        view.albedo *= (1.0 - shadow * np.isfinite(view.depth))[..., None]
    _draw_all([p for p in polys if p.obj != -1], view, R_wc, C, K, W, H,
              rays, sun, textures)
    return view


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                     a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def _draw_all(polys: list[Poly], view: View, R_wc, C, K, W, H, rays, sun,
              textures) -> None:
    """Cull and project every polygon at once, then rasterise the ones
    that can show (the per-polygon work is only the pixels)."""
    if not polys:
        return
    counts = np.array([len(p.pts) for p in polys])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    P = np.concatenate([p.pts for p in polys])
    p0, p1, p2 = P[starts], P[starts + 1], P[starts + 2]
    nrm = _cross(p1 - p0, p2 - p0)
    length = np.linalg.norm(nrm, axis=1)
    bad = (length < 1e-12) & (counts > 3)
    if bad.any():
        nrm[bad] = _cross(P[starts[bad] + 2] - p0[bad],
                          P[starts[bad] + 3] - p1[bad])
        length = np.linalg.norm(nrm, axis=1)
    nrm /= np.maximum(length, 1e-12)[:, None]
    centre = np.add.reduceat(P, starts, axis=0) / counts[:, None]
    inside = np.array([p.inside if p.inside is not None else (np.nan, ) * 3
                       for p in polys], np.float64)
    solid = ~np.isnan(inside[:, 0])
    flip = solid & (((centre - inside) * nrm).sum(1) < 0)
    nrm[flip] *= -1
    facing = ((C - centre) * nrm).sum(1)
    nrm[~solid & (facing < 0)] *= -1
    keep = ~solid | (facing > 0)
    pc = (P - C) @ R_wc
    zmin = np.minimum.reduceat(pc[:, 2], starts)
    keep &= np.maximum.reduceat(pc[:, 2], starts) >= NEAR
    z = np.maximum(pc[:, 2:3], NEAR)
    uv = pc[:, :2] / z * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    umin, umax = (np.minimum.reduceat(uv[:, 0], starts),
                  np.maximum.reduceat(uv[:, 0], starts))
    vmin, vmax = (np.minimum.reduceat(uv[:, 1], starts),
                  np.maximum.reduceat(uv[:, 1], starts))
    fast = (zmin >= NEAR) & (umin > -GUARD * W) & (umax < (GUARD + 1) * W) \
        & (vmin > -GUARD * H) & (vmax < (GUARD + 1) * H)
    in_image = (umax >= -1) & (umin <= W + 1) & (vmax >= -1) & (vmin <= H + 1)
    diffuse = nrm @ sun
    diffuse = np.where(solid, np.maximum(diffuse, 0.0),
                       0.35 + 0.5 * np.abs(diffuse))
    objs = np.array([p.obj for p in polys])
    for i in np.flatnonzero(keep & (in_image | (objs > 0))):
        poly, s, e = polys[i], starts[i], starts[i] + counts[i]
        if fast[i]:
            fixed = np.round(uv[s:e] * (1 << SHIFT)).astype(np.int32)
            pci = pc[s:e]
        else:
            fixed, pci = project_poly(poly.pts, R_wc, C, K, W, H)
            if fixed is None:
                continue
        if poly.obj > 0:
            view.polys.setdefault(poly.obj, []).append(fixed)
        if in_image[i] or not fast[i]:
            _raster(view, poly, fixed, pci, float(diffuse[i]), K, W, H,
                    rays, R_wc, C, textures)




def _raster(view: View, poly: Poly, fixed, pc, diffuse: float, K, W, H,
            rays, R_wc, C, textures) -> None:
    """Fill one projected polygon with a per-pixel depth test."""
    x0, y0 = (fixed.min(axis=0) >> SHIFT) - 1
    x1, y1 = (fixed.max(axis=0) >> SHIFT) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x0 >= x1 or y0 >= y1:
        return
    plane = _inverse_depth_plane(pc, K)
    if plane is None:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    offset = np.array([x0 << SHIFT, y0 << SHIFT], np.int32)
    cv2.fillPoly(mask, [fixed - offset], 1, lineType=cv2.LINE_8, shift=SHIFT)
    a, b, c = plane
    uu = np.arange(x0, x1, dtype=np.float32)
    vv = np.arange(y0, y1, dtype=np.float32)[:, None]
    z = 1.0 / np.maximum(a * uu + b * vv + c, 1e-6)
    win = (slice(y0, y1), slice(x0, x1))
    hit = mask.view(bool) & (z < view.depth[win])
    if not hit.any():
        return
    view.depth[win][hit] = z[hit]
    view.ids[win][hit] = max(poly.obj, 0)
    view.classes[win][hit] = UNLABELED if poly.cls is None else poly.cls
    view.drivable[win][hit] = BACKGROUND
    if poly.tex is not None:
        albedo, emit = textures.facade(poly, z, rays[win], R_wc, C, hit)
        view.albedo[win][hit] = albedo
        view.emit[win][hit] = emit
    else:
        view.albedo[win][hit] = poly.albedo
        view.emit[win][hit] = 0.0 if poly.emit is None else poly.emit
    view.shade[win][hit] = diffuse
