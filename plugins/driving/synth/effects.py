"""Lighting, weather and camera effects of synthetic drives.

Applied to a rasterised :class:`~.render.View`:
sun and sky light, the ego's headlights and street lamps at dusk and night
(as light falling on the surfaces, from each pixel's 3D position), bloom
around lights, fog by depth, rain streaks and wet glare, motion blur along
the ego's motion (stronger for near surfaces, none for the sky), lens
softness, vignetting and sensor noise (shot and read noise, stronger at
night). Random draws use ``(seed, frame, camera)`` so a drive reproduces.
"""
from __future__ import annotations

import cv2
import numpy as np

from .render import View, pixel_rays
from .scene import CameraModel, Scene

FOG_VISIBILITY = {'clear': 0.0, 'rain': 260.0, 'fog': 55.0}
EXPOSURE_S = {'day': 0.008, 'dusk': 0.016, 'night': 0.025}


def _surface_points(view: View, rays: np.ndarray) -> np.ndarray:
    depth = np.where(np.isfinite(view.depth), view.depth, np.float32(0))
    return (view.C.astype(np.float32)
            + depth[..., None] * (rays @ view.R_wc.T.astype(np.float32)))


def apply_lighting(scene: Scene, cam: CameraModel, view: View, tex,
                   frame: int) -> np.ndarray:
    """Linear RGB (H, W, 3) float32 after lighting, before the camera."""
    light = tex.light
    H, W = view.depth.shape
    rays = pixel_rays(tuple(cam.K.ravel()), W, H)
    P = _surface_points(view, rays)
    # Sky light reaches less of a surface close to the ground (a cheap
    # ambient occlusion: dark wheel arches, bumpers, building bases).
    height = P[..., 1]
    ao = np.where(height > 0.02, 0.6 + 0.4 * np.clip(height / 1.2, 0, 1),
                  1.0).astype(np.float32)
    irr = (np.array(light['ambient'], np.float32) * ao[..., None]
           + np.array(light['sun_rgb'], np.float32) * view.shade[..., None])
    if scene.lighting != 'day':
        R_wv, p = scene.ego_pose(scene.time(frame))
        rel = P - p.astype(np.float32)
        fwd = rel @ R_wv[:, 0].astype(np.float32) - 2.0
        lat = rel @ R_wv[:, 1].astype(np.float32)
        cone = np.exp(-(lat / (0.3 * np.maximum(fwd, 0) + 0.8)) ** 2)
        beam = cone / (1.0 + (fwd / 22.0) ** 2) * (fwd > 0) * (P[..., 1]
                                                              < 2.2)
        irr += 1.3 * beam[..., None] * np.array([1.0, 0.95, 0.85],
                                                np.float32)
        lamps = []
        for a in scene.actors:
            if a.kind == 'lamp':
                _, q = scene.actor_pose(a, 0.0)
                q = q + [-1.6 * a.params['side'], a.dims[1] - 0.2, 0.0]
                if abs(q[2] - view.C[2]) < 90:
                    lamps.append(q)
        if lamps:
            # Inverse-square-like falloff from every lamp at once:
            # |P - q|^2 = |P|^2 - 2 P.q + |q|^2 as one matrix product.
            Q = (np.array(lamps) - view.C).astype(np.float32)
            Pc = (P - view.C.astype(np.float32)).reshape(-1, 3)
            d2 = ((Pc ** 2).sum(1)[:, None] - 2 * Pc @ Q.T
                  + (Q ** 2).sum(1)[None])
            pool = (27.0 / (30.0 + np.maximum(d2, 0))).sum(1)
            irr += pool.reshape(H, W, 1) * np.array([1.0, 0.78, 0.45],
                                                    np.float32)
    rgb = view.albedo * irr + view.emit
    return rgb.astype(np.float32)


def apply_weather(scene: Scene, view: View, rgb: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Bloom around lights, fog by depth, rain streaks."""
    glow = np.clip(view.emit - 0.9, 0, None) * (np.isfinite(view.depth)
                                                [..., None])
    if glow.any():
        tall = 4.0 if scene.weather == 'rain' else 1.0
        rgb = rgb + 0.6 * cv2.GaussianBlur(glow, (0, 0), 2.5, sigmaY=2.5
                                           * tall)
        rgb = rgb + 0.35 * cv2.GaussianBlur(glow, (0, 0), 9.0, sigmaY=9.0
                                            * tall)
    vis = FOG_VISIBILITY[scene.weather]
    if vis:
        f = 1.0 - np.exp(-np.where(np.isfinite(view.depth), view.depth,
                                   1e4) / vis)
        colour = {'day': (0.72, 0.74, 0.76), 'dusk': (0.45, 0.38, 0.38),
                  'night': (0.05, 0.05, 0.06)}[scene.lighting]
        rgb = rgb * (1 - f[..., None]) + np.array(colour, np.float32) \
            * f[..., None]
    if scene.weather == 'rain':
        H, W = view.depth.shape
        streaks = np.zeros((H, W), np.float32)
        n = int(H * W / 600)
        xs, ys = rng.uniform(0, W, n), rng.uniform(0, H, n)
        lens = rng.uniform(0.03, 0.08, n) * H
        for x, y, ln in zip(xs, ys, lens):
            cv2.line(streaks, (int(x), int(y)), (int(x - 0.15 * ln),
                                                 int(y + ln)), 1.0, 1)
        streaks = cv2.GaussianBlur(streaks, (0, 0), 0.7)
        rgb = rgb * (1 - 0.18 * streaks[..., None]) + 0.16 * streaks[
            ..., None] * (0.4 if scene.lighting == 'day' else 0.15)
    return rgb


def motion_blur(scene: Scene, cam: CameraModel, view: View,
                rgb: np.ndarray, frame: int) -> np.ndarray:
    """Blur along the image flow of the ego's forward motion during the
    exposure: a point at depth z moves by (p - foe) * v * dt / z."""
    H, W = view.depth.shape
    R_wv, p = scene.ego_pose(scene.time(frame))
    fwd_cam = view.R_wc.T @ R_wv[:, 0]
    if fwd_cam[2] <= 0.05:
        return rgb
    foe = ((cam.K @ fwd_cam)[:2] / fwd_cam[2]).astype(np.float32)
    dt = EXPOSURE_S[scene.lighting]
    scale = (scene.ego_speed * dt * fwd_cam[2]
             / np.where(np.isfinite(view.depth), view.depth, 1e9))
    scale = np.minimum(scale, 0.03).astype(np.float32)
    if float(scale.max()) < 1e-3:
        return rgb
    u, v = np.meshgrid(np.arange(W, dtype=np.float32),
                       np.arange(H, dtype=np.float32))
    out = rgb.copy()
    steps = 5
    for k in range(1, steps):
        s = scale * (k / (steps - 1))
        map_x = u - (u - foe[0]) * s
        map_y = v - (v - foe[1]) * s
        out += cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return out / steps


def sensor(scene: Scene, rgb: np.ndarray, rng: np.random.Generator
           ) -> np.ndarray:
    """Lens softness, vignetting, tone curve, shot and read noise, 8 bits."""
    H, W = rgb.shape[:2]
    rgb = cv2.GaussianBlur(rgb, (0, 0), 0.55)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (W / 2)) ** 2
    rgb = rgb * (1.0 - 0.22 * r2)[..., None]
    # A soft shoulder keeps bright lights from clipping flat.
    rgb = np.where(rgb > 0.8, 0.8 + 0.2 * np.tanh((rgb - 0.8) / 0.2), rgb)
    img = np.clip(rgb, 0, 1) ** (1 / 1.15) * 255.0
    gain = {'day': 1.0, 'dusk': 2.0, 'night': 4.0}[scene.lighting]
    sigma = np.sqrt(0.8 * gain + 0.06 * gain * img)
    img = img + rng.standard_normal(img.shape, np.float32) * sigma
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def finish(scene: Scene, cam: CameraModel, view: View, tex, frame: int,
           cam_index: int = 0) -> np.ndarray:
    """Everything after rasterisation: RGB uint8 (H, W, 3)."""
    rng = np.random.default_rng([scene.seed, frame, cam_index, 99])
    rgb = apply_lighting(scene, cam, view, tex, frame)
    rgb = motion_blur(scene, cam, view, rgb, frame)
    rgb = apply_weather(scene, view, rgb, rng)
    return sensor(scene, rgb, rng)
