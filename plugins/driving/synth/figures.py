"""Billboard figures of synthetic drives: pedestrians, riders on bicycles
and motorcycles, and trees.

A figure is drawn in a vertical plane through the actor that faces the
camera. Its joints are given in side-view coordinates (``a`` metres along
the actor's heading, ``y`` metres up) plus a spread across the body; seen
from the side ``a`` shows fully, seen from behind only the spread does, so
a walker seen side-on swings its legs and a cyclist seen from behind is a
narrow upright shape, as in a real camera.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .actors import LocalFrame, Poly, box_corners, ngon, solid
from .scene import Actor, Scene


class Billboard:
    """Maps figure coordinates to world points in the camera-facing plane."""

    def __init__(self, R: np.ndarray, p: np.ndarray,
                 cam_centre: np.ndarray) -> None:
        v = p - cam_centre
        v[1] = 0.0
        v /= np.linalg.norm(v) + 1e-9
        self.p, self.v = p, v
        self.right = np.array([v[2], 0.0, -v[0]])
        heading = R[:, 2]
        self.c = float(heading @ self.right)        # side-on-ness (signed)
        self.f = math.sqrt(max(0.0, 1.0 - self.c ** 2))
        self.away = float(heading @ v) > 0            # we see its back

    def lat(self, a: float, spread: float = 0.0) -> float:
        return a * self.c + spread * self.f

    def lift(self, pts2d, d: float = 0.0) -> np.ndarray:
        pts2d = np.asarray(pts2d, np.float64).reshape(-1, 2)
        return (self.p + pts2d[:, :1] * self.right
                + pts2d[:, 1:2] * np.array([0.0, 1.0, 0.0]) - d * self.v)

    def poly(self, pts2d, obj, albedo, d=0.0, emit=None) -> Poly:
        return Poly(self.lift(pts2d, d), obj, albedo, emit)

    def limb(self, top, bottom, w_top, w_bot, obj, albedo, d=0.0) -> Poly:
        """A tapered quad between two screen-plane points (lat, y)."""
        (x0, y0), (x1, y1) = top, bottom
        n = np.array([y1 - y0, -(x1 - x0)])
        n /= np.linalg.norm(n) + 1e-9
        pts = [np.array([x0, y0]) + n * w_top / 2,
               np.array([x1, y1]) + n * w_bot / 2,
               np.array([x1, y1]) - n * w_bot / 2,
               np.array([x0, y0]) - n * w_top / 2]
        return self.poly(pts, obj, albedo, d)

    def hull(self, side_pts, spread, obj, albedo, d=0.0, emit=None) -> Poly:
        """A side-view shape with thickness ``2 * spread`` across."""
        side_pts = np.asarray(side_pts, np.float64)
        lat = side_pts[:, 0] * self.c
        both = np.concatenate([
            np.stack([lat - spread * self.f - 0.01, side_pts[:, 1]], 1),
            np.stack([lat + spread * self.f + 0.01, side_pts[:, 1]], 1)])
        hull = cv2.convexHull(both.astype(np.float32))[:, 0].astype(
            np.float64)
        return self.poly(hull, obj, albedo, d, emit)


def person_polys(bb: Billboard, obj: int, a: Actor, joints: dict,
                 h: float) -> list[Poly]:
    """A person from side-view joints: ``hip``, ``shoulder``, ``feet``
    (two (a, y)), ``hands`` (two (a, y))."""
    skin, shirt = a.params['skin'], a.color
    legs = a.params['legs']
    L, polys = bb.lat, []
    ha, hy = joints['hip']
    sa, sy = joints['shoulder']
    for k, (fa, fy) in enumerate(joints['feet']):
        s = 1 if k else -1
        hip, foot = (L(ha, s * 0.09), hy), (L(fa, s * 0.1), fy)
        knee = joints.get('knees', [None, None])[k]
        if knee is not None:
            kn = (L(knee[0], s * 0.11), knee[1])
            polys.append(bb.limb(hip, kn, 0.15, 0.12, obj, legs, 0.01 * k))
            polys.append(bb.limb(kn, foot, 0.12, 0.1, obj, legs, 0.01 * k))
        else:
            polys.append(bb.limb(hip, foot, 0.15, 0.11, obj, legs, 0.01 * k))
        polys.append(bb.limb(foot, (foot[0] + L(0.12), foot[1]), 0.09, 0.08,
                             obj, (0.08, 0.07, 0.07), 0.012 * k + 0.005))
    hw, sw = 0.1 * bb.f + 0.08, 0.2 * bb.f + 0.1
    torso = [(L(ha) - hw, hy), (L(ha) + hw, hy), (L(sa) + sw, sy),
             (L(sa) - sw, sy)]
    polys.append(bb.poly(torso, obj, shirt, 0.03))
    for k, (qa, qy) in enumerate(joints['hands']):
        s = 1 if k else -1
        sh = (L(sa, s * 0.22), sy - 0.03)
        hand = (L(qa, s * 0.25), qy)
        polys.append(bb.limb(sh, hand, 0.1, 0.08, obj, shirt, 0.05))
        polys.append(bb.poly(ngon(hand[0], hand[1], 0.045, 0.05, 6), obj,
                             skin, 0.055))
    head = (L(sa + 0.03), sy + 0.13)
    polys.append(bb.limb((L(sa), sy - 0.02), head, 0.08, 0.08, obj, skin,
                         0.025))
    polys.append(bb.poly(ngon(head[0], head[1], 0.085, 0.115, 12), obj,
                         skin, 0.03))
    hair = a.params.get('helmet') if joints.get('helmet') else (
        (0.08, 0.06, 0.05) if a.id % 3 else (0.35, 0.25, 0.15))
    if bb.away or joints.get('helmet'):
        cap = ngon(head[0], head[1] + 0.01, 0.095, 0.125, 12)
    else:
        cap = ngon(head[0], head[1] + 0.05, 0.09, 0.075, 12)
        cap = cap[cap[:, 1] >= head[1] + 0.02]
    if len(cap) >= 3:
        polys.append(bb.poly(cap, obj, hair, 0.035))
    return polys


def pedestrian_polys(scene: Scene, a: Actor, R, p, C, t) -> list[Poly]:
    bb = Billboard(R, p, C)
    h = a.params['height']
    speed = math.hypot(a.speed, a.cross_speed)
    phase = a.params['phase'] + t * speed * 2 * math.pi / 1.3
    swing = 0.38 * math.sin(phase) if speed else 0.0
    leg = 0.5 * h
    feet = [(leg * math.sin(s * swing), 0.5 * h - leg * math.cos(swing))
            for s in (1, -1)]
    hands = [(-0.6 * s * swing * 0.35 * h, 0.42 * h) for s in (1, -1)]
    return person_polys(bb, a.object_ids()[0], a, dict(
        hip=(0.0, 0.5 * h), shoulder=(0.0, 0.81 * h), feet=feet,
        hands=hands), h)


def _wheel(bb: Billboard, ac, r, tyre, obj, albedo, solid_disc):
    if solid_disc or abs(bb.c) < 0.3:
        ring = ngon(ac, r, r, r, 12)
        return [bb.hull(ring, tyre, obj, albedo, 0.0)]
    polys, n = [], 14
    for k in range(n):
        a0, a1 = 2 * math.pi * k / n, 2 * math.pi * (k + 1) / n
        pts = [(ac + r * math.cos(a0), r + r * math.sin(a0)),
               (ac + r * math.cos(a1), r + r * math.sin(a1)),
               (ac + (r - .05) * math.cos(a1), r + (r - .05) * math.sin(a1)),
               (ac + (r - .05) * math.cos(a0), r + (r - .05) * math.sin(a0))]
        polys.append(bb.poly([(bb.lat(x), y) for x, y in pts], obj, albedo))
    return polys


def rider_polys(scene: Scene, a: Actor, R, p, C, t) -> list[Poly]:
    bb = Billboard(R, p, C)
    person, vehicle = a.object_ids()
    frame_rgb = np.array(a.params['frame'])
    polys = []
    moto = a.kind == 'motorcyclist'
    r = 0.32 if moto else 0.34
    base = 0.6 if moto else 0.52
    for ac in (-base, base):
        polys += _wheel(bb, ac, r, 0.07 if moto else 0.025, vehicle,
                        (0.06, 0.06, 0.06), moto)
    on = scene.lighting != 'day' or scene.weather != 'clear'
    if moto:
        body = [(-0.7, 0.8), (-0.45, 0.55), (0.3, 0.4), (0.55, 0.72),
                (0.4, 0.98), (-0.05, 0.92), (-0.25, 0.85)]
        polys.append(bb.hull(body, 0.2, vehicle, frame_rgb, -0.02))
        polys.append(bb.hull([(-0.6, 0.85), (0.05, 0.9), (0.05, 0.98),
                              (-0.55, 0.95)], 0.15, vehicle, (.08, .08, .08),
                             0.0))
        end, rgb = (-0.72, (0.9, 0.1, 0.05)) if bb.away else \
            (0.62, (1.0, 1.0, 0.9))
        polys.append(bb.hull(ngon(end, 0.85, 0.06, 0.06, 8), 0.06, vehicle,
                             rgb, 0.12, np.array(rgb) * 2.5 if on else None))
        hip, shoulder = (-0.25, 1.0), (0.0, 1.55)
        knees = [(0.15, 0.75), (0.15, 0.75)]
        feet = [(0.0, 0.45), (0.0, 0.45)]
    else:
        tubes = [((-base, r), (0.0, 0.3)), ((0.0, 0.3), (-0.14, 0.85)),
                 ((-0.14, 0.85), (0.42, 0.86)), ((0.0, 0.3), (0.42, 0.86)),
                 ((-base, r), (-0.14, 0.85)), ((0.42, 0.86), (base, r)),
                 ((0.42, 0.86), (0.45, 1.02))]
        for (a0, y0), (a1, y1) in tubes:
            polys.append(bb.limb((bb.lat(a0), y0), (bb.lat(a1), y1), 0.045,
                                 0.045, vehicle, frame_rgb, -0.02))
        hip, shoulder = (-0.12, 0.95), (0.2, 1.45)
        ang = a.params['phase'] + t * abs(a.speed) / 0.35
        feet = [(0.17 * math.cos(ang + s), 0.3 + 0.17 * math.sin(ang + s))
                for s in (0.0, math.pi)]
        knees = [(0.2 + fa * 0.4, 0.62 + (fy - 0.3) * 0.5) for fa, fy in feet]
    polys.append(bb.limb((bb.lat(0.45, -0.27), 1.02),
                         (bb.lat(0.45, 0.27), 1.02), 0.04, 0.04, vehicle,
                         (0.1, 0.1, 0.1), -0.03))
    joints = dict(hip=hip, shoulder=shoulder, feet=feet, knees=knees,
                  hands=[(0.45, 1.02), (0.45, 1.02)], helmet=True)
    polys += person_polys(bb, person, a, joints, 1.75)
    return polys


def tree_polys(scene: Scene, a: Actor, R, p, C) -> list[Poly]:
    crown_w, height, trunk = a.dims
    polys = solid(LocalFrame(R, p), box_corners(
        -trunk / 2, trunk / 2, 0, height * 0.6, -trunk / 2, trunk / 2), 0,
        (0.23, 0.17, 0.12))
    bb = Billboard(R, p, C)
    rng = np.random.default_rng(a.params['seed'])
    base = np.array(a.color)
    for k in range(4):
        cx = rng.uniform(-0.3, 0.3) * crown_w
        cy = height * rng.uniform(0.55, 0.85)
        rad = crown_w * rng.uniform(0.35, 0.55)
        ang = np.linspace(0, 2 * math.pi, 15)[:-1]
        rr = rad * rng.uniform(0.75, 1.1, ang.size)
        pts = np.stack([cx + rr * np.cos(ang), cy + 0.8 * rr * np.sin(ang)],
                       1)
        hull = cv2.convexHull(pts.astype(np.float32))[:, 0]
        polys.append(bb.poly(hull, 0, base * rng.uniform(0.7, 1.3), 0.3 * k))
    return polys
