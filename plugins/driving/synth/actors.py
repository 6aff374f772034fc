"""Geometry of synthetic-drive actors as world-space polygons.

Every actor becomes a list of :class:`Poly`: planar convex polygons with an
albedo, an optional emission (lights), the id of the labeled object they
belong to (0 for unlabeled scenery) and, for faces of closed solids, a point
inside the solid so back faces can be culled. People and riders are
billboards turned towards the camera; vehicles, lights, signs and poles are
solids. The renderer draws exactly these polygons and the labels are
computed from exactly these polygons, so boxes match the pixels.
"""
from __future__ import annotations

import math

import numpy as np

from .scene import Actor, Scene

# Box faces as vertex indices of the corners from box_corners.
_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (3, 2, 6, 7),
          (0, 3, 7, 4), (1, 2, 6, 5))
GLASS = np.array([0.1, 0.12, 0.15])
TIRE = np.array([0.05, 0.05, 0.05])


class Poly:
    """A planar convex polygon in world coordinates (see module doc).

    ``albedo`` is a multiplier instead when ``obj == -1`` (ground shadow);
    ``tex``/``uv`` map a facade texture onto it; ``cls`` is its label-map
    class (set by :func:`.semantics.tag_polys`)."""

    __slots__ = ('pts', 'obj', 'albedo', 'emit', 'inside', 'tex', 'uv',
                 'cls')

    def __init__(self, pts, obj, albedo, emit=None, inside=None, tex=None,
                 uv=None) -> None:
        self.pts = np.asarray(pts, np.float64)
        self.obj, self.albedo = obj, np.asarray(albedo, np.float64)
        self.emit = None if emit is None else np.asarray(emit, np.float64)
        self.inside, self.tex, self.uv = inside, tex, uv
        self.cls = None     # label-map class id (.semantics.tag_polys)


class LocalFrame:
    """Local frame of an actor: x right, y up, z forward, metres."""

    def __init__(self, R: np.ndarray, p: np.ndarray) -> None:
        self.R, self.p = R, p

    def w(self, pts) -> np.ndarray:
        return np.asarray(pts, np.float64) @ self.R.T + self.p


def box_corners(x0, x1, y0, y1, z0, z1, top_dz=(0.0, 0.0), top_dx=0.0):
    """Corners of a box, optionally a frustum: the top face is shrunk by
    ``top_dz`` (back, front) and ``top_dx`` (each side)."""
    b0, b1 = z0 + top_dz[0], z1 - top_dz[1]
    return np.array([[x0, y0, z0], [x1, y0, z0], [x1 - top_dx, y1, b0],
                     [x0 + top_dx, y1, b0], [x0, y0, z1], [x1, y0, z1],
                     [x1 - top_dx, y1, b1], [x0 + top_dx, y1, b1]])


def solid(fr: LocalFrame, corners, obj, albedo, emit=None,
          face_albedo: dict | None = None) -> list[Poly]:
    """The six faces of a (frustum) box given by local corners."""
    pts = fr.w(corners)
    inside = pts.mean(axis=0)
    return [Poly(pts[list(f)], obj, (face_albedo or {}).get(i, albedo), emit,
                 inside) for i, f in enumerate(_FACES)]


def decal(fr: LocalFrame, corners, centre, obj, albedo, emit=None,
          lift=0.012) -> Poly:
    """A polygon laid on a face of a solid, lifted off it to win the depth
    test, and culled with that face."""
    corners = np.asarray(corners, np.float64)
    centre = np.asarray(centre, np.float64)
    mid = corners.mean(axis=0)
    # Lift along the face normal (pointing away from the solid's centre).
    e1, e2 = corners[1] - corners[0], corners[2] - corners[0]
    n = np.array([e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
                  e1[0] * e2[1] - e1[1] * e2[0]])
    n /= math.sqrt(n @ n) + 1e-12
    if np.dot(n, mid - centre) < 0:
        n = -n
    return Poly(fr.w(corners + lift * n), obj, albedo, emit, fr.w(centre))


def inset(quad, frac: float) -> np.ndarray:
    """Shrink a polygon towards its centre by ``frac``."""
    q = np.asarray(quad, np.float64)
    c = q.mean(axis=0)
    return c + (q - c) * (1 - frac)


def ngon(cx, cy, rx, ry, n=10, start=0.0):
    a = start + np.arange(n) * 2 * math.pi / n
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def wheel(fr: LocalFrame, x0, x1, zc, r, obj, far=False) -> list[Poly]:
    """An octagonal prism along local x (a tyre with a lighter hub); far
    away only its outer disc."""
    ring = ngon(zc, r, r, r, 8, math.pi / 8)
    a = np.array([[x0, y, z] for z, y in ring])
    b = np.array([[x1, y, z] for z, y in ring])
    pts_a, pts_b = fr.w(a), fr.w(b)
    inside = (pts_a.mean(0) + pts_b.mean(0)) / 2
    if far:
        outer = pts_a if abs(x0) > abs(x1) else pts_b
        return [Poly(outer, obj, TIRE, None, inside)]
    polys = [Poly(pts_a, obj, TIRE, None, inside),
             Poly(pts_b, obj, TIRE, None, inside)]
    for i in range(8):
        j = (i + 1) % 8
        polys.append(Poly(np.array([pts_a[i], pts_a[j], pts_b[j], pts_b[i]]),
                          obj, TIRE * 1.3, None, inside))
    side = x1 if abs(x1) > abs(x0) else x0
    hub = ngon(zc, r, r * 0.55, r * 0.55, 8, math.pi / 8)
    polys.append(decal(fr, [[side, y, z] for z, y in hub],
                       [(x0 + x1) / 2, r, zc], obj, (0.42, 0.42, 0.44),
                       lift=0.01))
    return polys


def lights_on(scene: Scene) -> bool:
    return scene.lighting != 'day' or scene.weather != 'clear'


def vehicle_polys(scene: Scene, a: Actor, fr: LocalFrame,
                  far: bool = False) -> list[Poly]:
    W, H, L = a.dims
    obj, col = a.object_ids()[0], np.array(a.color)
    style, polys = a.params['style'], []
    on = lights_on(scene)
    head = (2.5, 2.4, 2.0) if on and a.speed else None
    brake = a.params['brake'] and a.speed != 0
    tail_emit = (2.2, 0.15, 0.1) if brake else (
        (1.0, 0.05, 0.03) if on and a.speed else None)
    x0, x1 = -W / 2, W / 2
    if style in ('truck', 'bus'):
        r, axles = 0.5, ([-L / 2 + 1.6, L / 2 - 1.5] if style == 'bus'
                         else [-L / 2 + 1.3, -L / 2 + 2.6, L / 2 - 1.3])
    else:
        r, axles = 0.33, [-L / 2 + 0.85, L / 2 - 0.85]
    for zc in axles:
        polys += wheel(fr, x0 - 0.01, x0 + 0.24, zc, r, obj, far)
        polys += wheel(fr, x1 - 0.24, x1 + 0.01, zc, r, obj, far)
    if style == 'bus':
        c = box_corners(x0, x1, 0.3, H, -L / 2, L / 2)
        polys += solid(fr, c, obj, col)
        ctr = [0, H / 2, 0]
        for xs in (x0, x1):
            band = [[xs, 1.25, -L / 2 + 0.6], [xs, 2.6, -L / 2 + 0.6],
                    [xs, 2.6, L / 2 - 0.4], [xs, 1.25, L / 2 - 0.4]]
            polys.append(decal(fr, band, ctr, obj, GLASS))
        zf, zb = L / 2, -L / 2
        polys.append(decal(fr, [[x0 + .1, 1.1, zf], [x1 - .1, 1.1, zf],
                                [x1 - .1, 2.6, zf], [x0 + .1, 2.6, zf]],
                           ctr, obj, GLASS))
        polys.append(decal(fr, [[x0 + .3, 2.7, zf], [x1 - .3, 2.7, zf],
                                [x1 - .3, 3.05, zf], [x0 + .3, 3.05, zf]],
                           ctr, obj, (0.15, 0.1, 0.05),
                           (1.6, 0.8, 0.1) if on else None, lift=0.02))
        polys.append(decal(fr, [[x0 + .4, 1.9, zb], [x1 - .4, 1.9, zb],
                                [x1 - .4, 2.7, zb], [x0 + .4, 2.7, zb]],
                           ctr, obj, GLASS))
        hl_y, tl_y, hb = (0.55, 0.8), (0.6, 1.1), 1.2
    elif style == 'truck':
        cab = L / 2 - 2.1
        polys += solid(fr, box_corners(x0 + .05, x1 - .05, 0.5, 2.9, cab,
                                        L / 2, (0.0, 0.35)), obj, col)
        polys += solid(fr, box_corners(x0, x1, 0.95, H, -L / 2, cab - 0.15),
                       obj, np.array(a.params['cargo']) * 0.3 + 0.65)
        polys += solid(fr, box_corners(x0 + .25, x1 - .25, 0.45, 0.95,
                                        -L / 2 + 0.2, cab), obj, (.1, .1, .1))
        ctr = [0, 1.5, L / 2 - 1.0]
        polys.append(decal(fr, [[x0 + .2, 1.7, L / 2 - .28],
                                [x1 - .2, 1.7, L / 2 - .28],
                                [x1 - .25, 2.75, L / 2 - .33],
                                [x0 + .25, 2.75, L / 2 - .33]],
                           ctr, obj, GLASS, lift=0.03))
        for xs in (x0 + .05, x1 - .05):
            polys.append(decal(fr, [[xs, 1.7, cab + .3], [xs, 2.7, cab + .3],
                                    [xs, 2.7, L / 2 - .45],
                                    [xs, 1.7, L / 2 - .5]], ctr, obj, GLASS))
        hl_y, tl_y, hb = (0.6, 0.85), (0.55, 0.8), 0.95
    else:
        hb = H * (0.52 if style in ('suv', 'van') else 0.56)
        cab = {'sedan': ((-0.3, 0.18), (0.09, 0.16)),
               'hatch': ((-0.46, 0.2), (0.04, 0.2)),
               'suv': ((-0.47, 0.22), (0.03, 0.18)),
               'van': ((-0.49, 0.36), (0.01, 0.08))}[style]
        (zc0, zc1), (dz0, dz1) = cab
        polys += solid(fr, box_corners(x0, x1, 0.22, hb, -L / 2, L / 2,
                                        (0.04, 0.12)), obj, col)
        cc = box_corners(x0 + .04, x1 - .04, hb, H, zc0 * L, zc1 * L,
                          (dz0 * L, dz1 * L), 0.13)
        polys += solid(fr, cc, obj, col)
        ctr = cc.mean(axis=0)
        for face in _FACES[:2] + _FACES[4:]:
            q = cc[list(face)]
            polys.append(decal(fr, inset(q, 0.14), ctr, obj, GLASS))
        polys += solid(fr, box_corners(x0 - .01, x1 + .01, 0.22, 0.42,
                                        -L / 2 - .02, L / 2 + .02),
                       obj, col * 0.35 + 0.05)
        hl_y, tl_y = (hb - 0.2, hb - 0.06), (hb - 0.22, hb - 0.04)
    ctr = [0, hb / 2, 0]
    zf, zb = L / 2, -L / 2
    for sx in (-1, 1):
        xa, xb = sx * (W / 2 - 0.06), sx * (W / 2 - 0.34)
        polys.append(decal(fr, [[xa, tl_y[0], zb], [xb, tl_y[0], zb],
                                [xb, tl_y[1], zb], [xa, tl_y[1], zb]],
                           ctr, obj, (0.55, 0.05, 0.04), tail_emit, 0.03))
        polys.append(decal(fr, [[xa, hl_y[0], zf], [xb, hl_y[0], zf],
                                [xb, hl_y[1], zf], [xa, hl_y[1], zf]],
                           ctr, obj, (0.85, 0.85, 0.8), head, 0.03))
    for z in (zb, zf):
        polys.append(decal(fr, [[-.26, .3, z], [.26, .3, z], [.26, .43, z],
                                [-.26, .43, z]], ctr, obj, (.9, .9, .85),
                           lift=0.04))
    # Contact shadow on the road.
    polys.append(Poly(fr.w([[x0 - .15, 0.01, -L / 2 - .2],
                            [x1 + .15, 0.01, -L / 2 - .2],
                            [x1 + .15, 0.01, L / 2 + .2],
                            [x0 - .15, 0.01, L / 2 + .2]]), -1, (0.45, ) * 3))
    return polys


def traffic_light_polys(scene: Scene, a: Actor, fr: LocalFrame,
                        t: float) -> list[Poly]:
    W, H, D = a.dims
    obj, h = a.object_ids()[0], a.params['height']
    polys = solid(fr, box_corners(-W / 2, W / 2, h, h + H, -D / 2, D / 2),
                  obj, a.color)
    ctr = [0, h + H / 2, 0]
    state = a.params['state']
    night = scene.lighting != 'day'
    for k, name in enumerate(('red', 'yellow', 'green')):
        rgb = {'red': (1.0, 0.1, 0.05), 'yellow': (1.0, 0.7, 0.05),
               'green': (0.1, 1.0, 0.5)}[name]
        lit = name == state
        disc = ngon(0, h + H * (0.8 - 0.3 * k), W * 0.33, W * 0.33, 10)
        polys.append(decal(fr, [[x, y, D / 2] for x, y in disc], ctr, obj,
                           np.array(rgb) * (0.6 if lit else 0.12),
                           np.array(rgb) * (3.0 if night else 1.6)
                           if lit else None))
    # Pole (and mast arm) are unlabeled scenery that still occludes.
    if a.params['mast']:
        rel = a.params['pole_x'] - a.x_rel
        polys += solid(fr, box_corners(-0.06, 0.06, h + H - 0.1, h + H,
                                        -0.06, 0.06), 0, (0.25, 0.25, 0.25))
        # Facing the ego, local x points to the world's left: the pole on
        # the right sidewalk is at local x = -rel.
        polys += solid(fr, box_corners(-rel, 0.0, h + H, h + H + 0.15,
                                        -0.07, 0.07), 0, (0.3, 0.3, 0.3))
        polys += solid(fr, box_corners(-rel - .1, -rel + .1, 0, h + H + .2,
                                        -.1, .1), 0, (0.3, 0.3, 0.3))
    else:
        polys += solid(fr, box_corners(-0.07, 0.07, 0, h, -0.07, 0.07), 0,
                       (0.3, 0.3, 0.3))
    return polys


SIGN_STYLES = {  # shape: (outer polygon, outer rgb, inner scale, inner rgb)
    'speed': ('disc', (0.8, 0.05, 0.05), 0.78, (0.95, 0.95, 0.95)),
    'stop': ('oct', (0.85, 0.05, 0.05), 0.88, (0.75, 0.04, 0.04)),
    'yield': ('tri', (0.85, 0.05, 0.05), 0.62, (0.95, 0.95, 0.95)),
    'info': ('rect', (0.05, 0.25, 0.6), 0.85, (0.08, 0.3, 0.68)),
    'warning': ('diamond', (0.08, 0.08, 0.08), 0.85, (0.95, 0.78, 0.1)),
}


def _sign_shape(shape: str, w: float, h: float, cy: float) -> np.ndarray:
    if shape == 'disc':
        return ngon(0, cy, w / 2, h / 2, 16)
    if shape == 'oct':
        return ngon(0, cy, w / 2, h / 2, 8, math.pi / 8)
    if shape == 'tri':
        return np.array([[-w / 2, cy + h / 2], [w / 2, cy + h / 2],
                         [0, cy - h / 2]])
    if shape == 'diamond':
        return ngon(0, cy, w / 2, h / 2, 4)
    return np.array([[-w / 2, cy - h / 2], [w / 2, cy - h / 2],
                     [w / 2, cy + h / 2], [-w / 2, cy + h / 2]])


def traffic_sign_polys(scene: Scene, a: Actor, fr: LocalFrame) -> list[Poly]:
    w, h, _ = a.dims
    obj, cy = a.object_ids()[0], a.params['height']
    shape, outer, scale, inner = SIGN_STYLES[a.params['shape']]
    out = _sign_shape(shape, w, h, cy)
    polys = [Poly(fr.w([[x, y, 0.02] for x, y in out]), obj, outer, None,
                  fr.w([0, cy, 0.0])),
             Poly(fr.w([[x, y, -0.02] for x, y in out]), obj,
                  (0.45, 0.45, 0.47), None, fr.w([0, cy, 0.0]))]
    inn = _sign_shape(shape, w * scale, h * scale, cy)
    if shape == 'tri':
        inn[:, 1] += h * (1 - scale) * 0.15
    polys.append(Poly(fr.w([[x, y, 0.035] for x, y in inn]), obj, inner,
                      None, fr.w([0, cy, 0.0])))
    if a.params['shape'] in ('speed', 'stop', 'info'):
        bar = [[-w * .25, cy - h * .08, .05], [w * .25, cy - h * .08, .05],
               [w * .25, cy + h * .08, .05], [-w * .25, cy + h * .08, .05]]
        polys.append(Poly(fr.w(bar), obj, (0.05, 0.05, 0.05)
                          if shape == 'disc' else (0.95, 0.95, 0.95), None,
                          fr.w([0, cy, 0.0])))
    polys += solid(fr, box_corners(-0.04, 0.04, 0, cy - h / 2, -0.1, -0.03),
                   0, (0.5, 0.5, 0.52))
    return polys


def lamp_polys(scene: Scene, a: Actor, fr: LocalFrame) -> list[Poly]:
    _, h, _ = a.dims
    side = a.params['side']
    polys = solid(fr, box_corners(-0.09, 0.09, 0, h, -0.09, 0.09), 0,
                  a.color)
    # The arm reaches over the road: towards -x_rel on the right side.
    reach = -1.6 * side
    xa, xb = sorted((0.0, reach))
    polys += solid(fr, box_corners(
        xa, xb, h - 0.12, h, -0.06, 0.06), 0, a.color)
    head = box_corners(reach - 0.35, reach + 0.35, h - 0.2, h - 0.02,
                        -0.18, 0.18)
    emit = (3.0, 2.6, 1.8) if scene.lighting != 'day' else None
    polys += solid(fr, head, 0, (0.35, 0.35, 0.35),
                   face_albedo={2: (0.9, 0.9, 0.8)})
    if emit is not None:
        polys[-4].emit = np.array(emit)    # the bottom face glows
    return polys


def building_polys(scene: Scene, a: Actor) -> list[Poly]:
    """Facade strips that follow the curve, with a textured front and a
    plain end wall at each end."""
    side, height = a.params['side'], a.dims[1]
    road, polys = scene.road, []
    n = max(1, int(math.ceil(a.dims[2] / 6.0)))
    ss = np.linspace(a.s0, a.s0 + a.dims[2], n + 1)
    xs = road.center(ss) + a.x_rel
    for i in range(n):
        p0 = [xs[i], 0, ss[i]]
        p1 = [xs[i + 1], 0, ss[i + 1]]
        quad = np.array([p0, p1, [p1[0], height, p1[2]],
                         [p0[0], height, p0[2]]])
        u0, u1 = ss[i] - a.s0, ss[i + 1] - a.s0
        polys.append(Poly(quad, 0, a.color, tex=a.params['texture'],
                          uv=np.array([[u0, 0], [u1, 0], [u1, height],
                                       [u0, height]])))
    for k, s in ((0, ss[0]), (n, ss[-1])):
        x = xs[k]
        wall = np.array([[x, 0, s], [x + side * 12, 0, s],
                         [x + side * 12, height, s], [x, height, s]])
        polys.append(Poly(wall, 0, np.array(a.color) * 0.8))
    return polys
