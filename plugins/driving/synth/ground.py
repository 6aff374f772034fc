"""Ground, sky and surface textures of synthetic drives.

The ground is drawn per pixel: each camera ray is intersected with the
plane ``Y = 0`` and the hit point, in road coordinates, decides the surface
(asphalt with wear and patches, lane markings, crosswalk, curb, paving,
verge). Textures are generated once per drive from its seed.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .scene import Scene
from .semantics import SEG_ID, ground_classes, ground_drivable

# Lighting presets: sun direction (elevation, azimuth in degrees), ambient
# and sun colours, sky (horizon, zenith), exposure.
LIGHT = {
    'day': dict(sun=(50.0, -35.0), ambient=(0.48, 0.5, 0.55),
                sun_rgb=(0.62, 0.6, 0.55), horizon=(0.78, 0.84, 0.9),
                zenith=(0.35, 0.55, 0.85)),
    'dusk': dict(sun=(6.0, 20.0), ambient=(0.26, 0.22, 0.25),
                 sun_rgb=(0.55, 0.35, 0.18), horizon=(0.95, 0.55, 0.3),
                 zenith=(0.2, 0.2, 0.38)),
    'night': dict(sun=(-20.0, 0.0), ambient=(0.035, 0.04, 0.06),
                  sun_rgb=(0.0, 0.0, 0.0), horizon=(0.05, 0.055, 0.08),
                  zenith=(0.01, 0.012, 0.025)),
}


def _noise(rng: np.random.Generator, size: int, scales=(1, 4, 16),
           weights=(0.5, 0.3, 0.2)) -> np.ndarray:
    """Tileable multi-octave value noise in [0, 1], (size, size)."""
    out = np.zeros((size, size), np.float32)
    for s, w in zip(scales, weights):
        cells = max(2, size // (s * 4))
        base = rng.random((cells, cells)).astype(np.float32)
        base = np.concatenate([base, base[:1]], 0)
        base = np.concatenate([base, base[:, :1]], 1)
        up = cv2.resize(base, (size + size // cells, size + size // cells),
                        interpolation=cv2.INTER_CUBIC)
        out += w * up[:size, :size]
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


class Textures:
    """Per-drive textures, the sun and lighting constants."""

    FACADE_PPM = 10.0       # facade texture pixels per metre

    def __init__(self, scene: Scene) -> None:
        rng = np.random.default_rng([scene.seed, 7])
        self.scene = scene
        self.light = dict(LIGHT[scene.lighting])
        if scene.weather != 'clear' and scene.lighting == 'day':
            self.light.update(ambient=(0.62, 0.63, 0.66),
                              sun_rgb=(0.12, 0.12, 0.12),
                              horizon=(0.7, 0.72, 0.74),
                              zenith=(0.55, 0.57, 0.6))
        el, az = (math.radians(v) for v in self.light['sun'])
        self.sun = np.array([math.cos(el) * math.sin(az), math.sin(el),
                             -math.cos(el) * math.cos(az)])
        self.asphalt = (_noise(rng, 256, (1, 2, 8), (0.45, 0.35, 0.2))
                        + 0.6 * rng.random((256, 256))).astype(np.float32)
        self.asphalt = (self.asphalt - self.asphalt.mean()) / \
            self.asphalt.std()
        self.patches = _noise(rng, 128, (2, 4), (0.6, 0.4))
        self.clouds = _noise(rng, 256, (2, 4, 16), (0.5, 0.3, 0.2))
        self.facades = [self._facade(rng, k) for k in range(4)]

    def _facade(self, rng: np.random.Generator, kind: int):
        """A 24 m x 32 m facade: (rgb, alpha) where alpha 0 = wall (rgb
        multiplies the building colour), 1 = dark glass, 2 = glass lit at
        night."""
        p = self.FACADE_PPM
        h, w = int(32 * p), int(24 * p)
        rgb = (0.85 + 0.25 * _noise(rng, max(h, w), (1, 8))[:h, :w])[..., None]
        rgb = np.repeat(rgb, 3, axis=2).astype(np.float32)
        alpha = np.zeros((h, w), np.uint8)
        floor = (3.2, 3.5, 3.0, 3.8)[kind]
        col = (2.4, 3.0, 2.0, 4.0)[kind]
        win_w, win_h = (1.3, 1.6, 1.0, 3.2)[kind], (1.6, 1.8, 1.5, 2.4)[kind]
        glass = np.array([0.16, 0.2, 0.26], np.float32)
        for fl in range(1, int(32 / floor)):
            y0 = int(h - (fl * floor + 0.9) * p)
            y1 = int(y0 - win_h * p)
            # A ledge under each row of windows.
            rgb[max(y0, 0):y0 + 2, :] *= 0.7
            for cx in np.arange(col / 2, 24, col):
                x0, x1 = int((cx - win_w / 2) * p), int((cx + win_w / 2) * p)
                lit = 2 if rng.random() < 0.35 else 1
                shade = glass * rng.uniform(0.7, 1.4)
                rgb[max(y1, 0):y0, x0:x1] = shade
                alpha[max(y1, 0):y0, x0:x1] = lit
                rgb[max(y1, 0):y0, x0 - 1:x0 + 1] *= 0.5
        # Shop fronts at street level.
        for cx in np.arange(3.0, 24, 6.0):
            x0, x1 = int((cx - 2.2) * p), int((cx + 2.2) * p)
            rgb[int(h - 3.0 * p):int(h - 0.3 * p), x0:x1] = glass * 1.3
            alpha[int(h - 3.0 * p):int(h - 0.3 * p), x0:x1] = \
                2 if rng.random() < 0.5 else 1
            rgb[int(h - 3.6 * p):int(h - 3.0 * p), x0:x1] = \
                rng.uniform(0.1, 0.9, 3)
        return rgb, alpha

    def facade(self, poly, z, rays_win, R_wc, C, hit):
        """Albedo and emission of a textured facade at the hit pixels."""
        P = C + z[hit][:, None] * (rays_win[hit] @ R_wc.T)
        e = np.stack([poly.pts[1] - poly.pts[0], poly.pts[3] - poly.pts[0]])
        duv = np.stack([poly.uv[1] - poly.uv[0], poly.uv[3] - poly.uv[0]])
        M = duv.T @ np.linalg.pinv(e.T)            # (2, 3) world -> uv
        uv = (P - poly.pts[0]) @ M.T + poly.uv[0]
        rgb, alpha = self.facades[poly.tex]
        th, tw = alpha.shape
        ix = (uv[:, 0] * self.FACADE_PPM).astype(np.int64) % tw
        iy = np.clip(th - 1 - (uv[:, 1] * self.FACADE_PPM).astype(np.int64),
                     0, th - 1)
        a = alpha[iy, ix]
        texel = rgb[iy, ix]
        albedo = np.where(a[:, None] > 0, texel, texel * poly.albedo)
        emit = np.zeros_like(albedo)
        if self.scene.lighting != 'day':
            emit[a == 2] = np.array((1.1, 0.85, 0.5)) * (
                0.9 if self.scene.lighting == 'night' else 0.45)
        return albedo, emit


def draw_ground(scene: Scene, view, rays: np.ndarray, tex: Textures) -> None:
    """Fill ``view`` with the ground and the sky."""
    road, R_wc, C = scene.road, view.R_wc, view.C
    d = rays @ R_wc.T
    dy = d[..., 1]
    ground = dy < -1e-5
    t = -C[1] / dy[ground]
    X = C[0] + t * d[..., 0][ground]
    Z = C[2] + t * d[..., 2][ground]
    xr = X - road.center(Z)
    # Asphalt: fine grain fading with distance (no aliasing), patches.
    ix = (xr * 24).astype(np.int64) % 256
    iz = (Z * 24).astype(np.int64) % 256
    fade = np.clip(1.0 - (t - 8.0) / 40.0, 0.0, 1.0)
    grain = tex.asphalt[iz, ix] * fade
    patch = tex.patches[(Z * 3).astype(np.int64) % 128,
                        (xr * 3).astype(np.int64) % 128]
    wet = 0.7 if scene.weather == 'rain' else 1.0
    grey = (0.25 + 0.025 * grain - 0.06 * patch) * wet
    col = np.stack([grey, grey, grey * 1.03], 1)
    lw = road.lane_width
    white = np.array([0.82, 0.82, 0.8]) * (0.85 + 0.1 * wet)
    # Markings: centre double yellow, dashed lane lines, edge lines.
    on_road = (xr > road.left_edge) & (xr < road.right_edge)
    yellow = on_road & (np.abs(np.abs(xr) - 0.15) < 0.06)
    dashed = np.zeros_like(yellow)
    for k in range(1, road.lanes_right):
        dashed |= np.abs(xr - k * lw) < 0.075
    for k in range(1, road.lanes_left):
        dashed |= np.abs(xr + k * lw) < 0.075
    dashed &= (Z % 12.0) < 4.0
    edge = (np.abs(xr - road.lanes_right * lw) < 0.07) | \
        (np.abs(xr + road.lanes_left * lw) < 0.07)
    zx = scene.crossing_s
    cross = on_road & (np.abs(Z - zx) < 2.0) & ((xr % 1.2) < 0.6)
    stop = (np.abs(Z - (zx - 3.2)) < 0.25) & (xr > 0) & \
        (xr < road.lanes_right * lw)
    wear = np.clip(0.75 + 0.25 * (tex.asphalt[iz, (ix * 3) % 256] * fade),
                   0.4, 1.0)[:, None]
    white_mask = (dashed | edge | cross | stop) & on_road
    mixed = col * (1 - wear) + white * wear
    col = np.where(white_mask[:, None], mixed, col)
    col = np.where(yellow[:, None],
                   col * (1 - wear) + np.array([0.85, 0.65, 0.1]) * wear, col)
    # Curbs, paving tiles, verge.
    right = road.right_edge
    left = road.left_edge
    curb = ((xr >= right) & (xr < right + road.curb)) | \
        ((xr <= left) & (xr > left - road.curb))
    walk = ((xr >= right + road.curb) & (xr < right + road.curb +
                                         road.sidewalk)) | \
        ((xr <= left - road.curb) & (xr > left - road.curb - road.sidewalk))
    verge = ~(on_road | curb | walk)
    joints = ((np.abs(xr) % 0.6 < 0.03) | (Z % 0.6 < 0.03)) & (t < 40)
    tile = 0.5 + 0.04 * grain - 0.08 * joints - 0.05 * patch
    col = np.where(walk[:, None], np.stack([tile, tile * 0.97, tile * 0.93],
                                           1) * wet, col)
    col = np.where(curb[:, None], np.full_like(col, 0.62 * wet), col)
    col = np.where(verge[:, None], np.stack([0.2 + 0.05 * patch,
                                             0.22 + 0.08 * patch,
                                             0.14 + 0.0 * patch], 1), col)
    view.albedo[ground] = col
    if view.classes is not None:
        view.classes[ground] = ground_classes(on_road, white_mask | yellow,
                                              curb | walk)
        view.classes[~ground] = SEG_ID['sky']
        view.drivable[ground] = ground_drivable(xr, road, scene.ego_x_rel)
    view.depth[ground] = t
    view.shade[ground] = max(float(tex.sun[1]), 0.0)
    # Sky: gradient, clouds by day.
    sky = ~ground
    dn = d[sky] / np.linalg.norm(d[sky], axis=1, keepdims=True)
    el = np.clip(dn[:, 1], 0.0, 1.0) ** 0.6
    hz, zn = np.array(tex.light['horizon']), np.array(tex.light['zenith'])
    col = hz * (1 - el[:, None]) + zn * el[:, None]
    if scene.lighting != 'night':
        az = np.arctan2(dn[:, 0], dn[:, 2])
        cu = ((az / math.pi * 256).astype(np.int64)) % 256
        cv = (np.clip(dn[:, 1], 0, 1) * 400).astype(np.int64) % 256
        cloud = np.clip(tex.clouds[cv, cu] * 1.6 - 0.7, 0, 1)[:, None]
        col = col * (1 - 0.6 * cloud) + 0.95 * np.array(hz) * 0.6 * cloud
    view.emit[sky] = col
