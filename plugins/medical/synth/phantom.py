"""An analytic chest CT phantom in patient LPS millimetres.

Every structure is a signed distance (mm, negative inside), so any slice in
any orientation is sampled from the same patient: lesions planted at LPS
coordinates are where the geometry of every series says they are, oblique
or not. Partial-volume edges come from the distance itself: a voxel whose
centre lies ``d`` mm outside a surface gets ``clip(0.5 - d / voxel, 0, 1)``
of it. Values are Hounsfield units (air -1000, fat -100, soft tissue 40,
lung about -850, bone several hundred).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LUNG_HU = -850.0
LUNG_GRADIENT = 0.4  # HU per mm towards posterior (dependent lung is denser)
LIVER_HU = 60.0


@dataclass
class Lesion:
    """A planted lesion: a sphere, or a sphere with lobes inside it."""

    center: np.ndarray  # LPS mm
    diameter_mm: float
    hu: float
    background_hu: float
    organ: str  # 'lung' or 'liver'
    lobes: list = field(default_factory=list)  # [(center, radius)]

    @property
    def radius(self) -> float:
        return self.diameter_mm / 2.0

    @property
    def contrast_hu(self) -> float:
        return self.hu - self.background_hu


def _frac(d: np.ndarray, voxel: float) -> np.ndarray:
    return np.clip(0.5 - d / voxel, 0.0, 1.0)


def _ellipsoid(p: np.ndarray, c, r) -> np.ndarray:
    r = np.asarray(r, np.float32)
    k = np.sqrt((((p - np.asarray(c, np.float32)) / r) ** 2).sum(-1))
    return (k - 1.0) * r.min()


def _ellipse_xy(p: np.ndarray, cx: float, cy: float, a: float,
                b: float) -> np.ndarray:
    k = np.sqrt(((p[:, 0] - cx) / a) ** 2 + ((p[:, 1] - cy) / b) ** 2)
    return (k - 1.0) * min(a, b)


def _capsule(p: np.ndarray, a: np.ndarray, b: np.ndarray,
             r: float) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1) - r


class ChestPhantom:
    """One synthetic patient's chest and upper abdomen.

    Args:
        rng: the patient's random generator (body size, vessels, lesions).
        z_range: (low, high) LPS z (mm) that the series will cover; lesions
            are planted inside it.
        n_lesions: lung nodules to plant (one liver lesion is added when the
            liver is in ``z_range``).
    """

    def __init__(self, rng: np.random.Generator, z_range: tuple[float, float],
                 n_lesions: int = 3) -> None:
        s = rng.uniform(0.92, 1.08)
        self.a, self.b = 160.0 * s, 112.0 * s  # body half-width / half-depth
        self.lungs = [((-68.0 * s, 8.0, 25.0), (54.0 * s, 68.0 * s, 92.0)),
                      ((70.0 * s, 8.0, 30.0), (50.0 * s, 66.0 * s, 88.0))]
        self.heart = ((22.0 * s, -30.0 * s, -15.0), (52.0 * s, 44.0 * s, 48.0))
        self.liver = ((-58.0 * s, -5.0, -105.0), (92.0 * s, 82.0 * s, 75.0))
        self.spine_y = self.b - 62.0 * s
        self.rib_phase = rng.uniform(0.0, 28.0)
        self.vessels = self._vessel_tree(rng)
        self.lesions: list[Lesion] = []
        self._plant_lesions(rng, z_range, n_lesions)

    # -- construction ---------------------------------------------------
    def _inside_lung(self, rng, lung, scale=0.85) -> np.ndarray:
        c, r = lung
        while True:
            u = rng.uniform(-1, 1, 3)
            if (u ** 2).sum() <= 1:
                return np.asarray(c) + u * np.asarray(r) * scale

    def _vessel_tree(self, rng) -> list[tuple]:
        segments = []
        for side, lung in zip((-1, 1), self.lungs):
            hilum = np.array([side * 30.0, 5.0, 10.0])
            frontier = [(hilum, 5.0)]
            for _depth in range(4):
                grown = []
                for start, radius in frontier:
                    for _ in range(3):
                        end = self._inside_lung(rng, lung)
                        end = start + (end - start) * rng.uniform(0.5, 0.9)
                        segments.append((start, end, radius))
                        grown.append((end, radius * 0.65))
                frontier = grown
        return [(np.asarray(a, np.float32), np.asarray(b, np.float32), r)
                for a, b, r in segments]

    def _plant_lesions(self, rng, z_range, n_lesions) -> None:
        z_lo, z_hi = z_range
        tries = 0
        while len(self.lesions) < n_lesions and tries < 2000:
            tries += 1
            # log-uniform 3..30 mm: small nodules are the common ones
            diameter = float(np.exp(rng.uniform(np.log(3.0), np.log(30.0))))
            lung = self.lungs[rng.integers(2)]
            c = self._inside_lung(rng, lung, 0.8)
            if not self._fits(c, diameter / 2, z_lo, z_hi, 'lung'):
                continue
            hu = float(rng.uniform(-650.0, 50.0))  # ground glass .. solid
            self._add(rng, c, diameter, hu, 'lung')
        for _ in range(500):  # one low-contrast liver lesion if visible
            diameter = float(rng.uniform(10.0, 28.0))
            lc, lr = self.liver
            c = np.asarray(lc) + rng.uniform(-0.55, 0.55, 3) * np.asarray(lr)
            if self._fits(c, diameter / 2, z_lo, z_hi, 'liver'):
                contrast = float(rng.uniform(50.0, 100.0)
                                 * rng.choice([-1.0, 1.0]))
                self._add(rng, c, diameter, LIVER_HU + contrast, 'liver')
                break

    def _fits(self, c, r, z_lo, z_hi, organ) -> bool:
        if not (z_lo + r + 4 < c[2] < z_hi - r - 4):
            return False
        p = c[None].astype(np.float32)
        margin = r + 8.0  # the shell used to measure contrast stays clean
        if organ == 'lung':
            inside = min(_ellipsoid(p, *lung)[0] for lung in self.lungs)
            if inside > -margin or _ellipsoid(p, *self.heart)[0] < margin:
                return False
        else:
            if _ellipsoid(p, *self.liver)[0] > -margin:
                return False
            if min(_ellipsoid(p, *lung)[0] for lung in self.lungs) < margin:
                return False
        return all(np.linalg.norm(c - o.center) > r + o.radius + 16
                   for o in self.lesions)

    def _add(self, rng, c, diameter, hu, organ) -> None:
        background = float(self._tissue(c[None].astype(np.float32), 1.0,
                                         lesions=False)[0])
        if organ == 'lung':
            background = LUNG_HU + LUNG_GRADIENT * float(c[1])
        lobes = []
        if rng.random() < 0.35 and diameter >= 8:
            r = diameter / 2
            for _ in range(int(rng.integers(2, 5))):
                u = rng.normal(size=3)
                u /= np.linalg.norm(u)
                # a smaller core with lobes reaching the stated diameter
                lobes.append((c + u * 0.45 * r, 0.55 * r))
        self.lesions.append(Lesion(np.asarray(c, np.float64), diameter,
                                   float(hu), background, organ, lobes))

    # -- sampling -------------------------------------------------------
    def _ribs(self, p: np.ndarray) -> np.ndarray:
        a, b = self.a - 20.0, self.b - 20.0
        u, v = p[:, 0] / a, (p[:, 1] - 5.0) / b
        k = np.sqrt(u ** 2 + v ** 2) + 1e-6
        sin_t = v / k  # +1 posterior, -1 anterior
        radial = (k - 1.0) * min(a, b)
        period = 28.0
        zz = p[:, 2] - 45.0 * sin_t - self.rib_phase  # ribs slope down ahead
        dz = np.abs(np.mod(zz + period / 2, period) - period / 2)
        d = (np.sqrt((radial / 4.5) ** 2 + (dz / 5.5) ** 2) - 1.0) * 4.5
        return np.where(sin_t < -0.88, 50.0, d)  # no ribs at the sternum

    def _spine(self, p: np.ndarray) -> tuple[np.ndarray, ...]:
        """Distances to the vertebral body, the arch (a shell), the canal
        and the spinous process."""
        sy = self.spine_y
        return (_ellipse_xy(p, 0, sy, 20.0, 16.0),
                np.abs(_ellipse_xy(p, 0, sy + 28, 13.0, 13.0) + 2.5) - 3.5,
                _ellipse_xy(p, 0, sy + 28, 8.0, 8.0),
                _capsule(p, np.array([0, sy + 40, -1e4], np.float32),
                         np.array([0, sy + 40, 1e4], np.float32), 4.0))

    def _after_heart(self, p: np.ndarray) -> tuple[np.ndarray, ...]:
        """Distances to what is painted over the heart and lungs: the
        aorta, the trachea, the ribs and the sternum."""
        aorta = np.array([18.0, self.spine_y - 20.0], np.float32)
        top = np.array([0, 5 - self.b + 10], np.float32)
        return (_capsule(p, np.array([*aorta, -1e4], np.float32),
                         np.array([*aorta, 1e4], np.float32), 12.0),
                _capsule(p, np.array([0, 0, 40.0], np.float32),
                         np.array([0, 0, 1e4], np.float32), 9.0),
                self._ribs(p),
                _capsule(p, np.array([*top, -1e4], np.float32),
                         np.array([*top, 1e4], np.float32), 6.0))

    @staticmethod
    def _near(p, a, b, pad, plane) -> np.ndarray | None:
        """Indices of the points within ``pad`` of the box around a..b."""
        if plane is None:
            lo, hi = np.minimum(a, b) - pad, np.maximum(a, b) + pad
            near = np.flatnonzero(((p >= lo) & (p <= hi)).all(1))
            return near if len(near) else None
        origin, axes, size, step = plane
        if min((a - origin) @ axes[2], (b - origin) @ axes[2]) > pad or \
                max((a - origin) @ axes[2], (b - origin) @ axes[2]) < -pad:
            return None
        ranges = []
        for axis in axes[:2]:  # a rectangle of the slice's pixel grid
            ends = ((a - origin) @ axis / step, (b - origin) @ axis / step)
            lo = max(int(np.floor(min(ends) - pad / step)) - 1, 0)
            hi = min(int(np.ceil(max(ends) + pad / step)) + 2, size)
            if lo >= hi:
                return None
            ranges.append(np.arange(lo, hi))
        return (ranges[1][:, None] * size + ranges[0][None, :]).ravel()

    def _tissue(self, p: np.ndarray, voxel: float, lesions: bool = True,
                plane: tuple | None = None) -> np.ndarray:
        hu = np.full(len(p), -1000.0, np.float32)

        def paint(d, value, weight=None):
            f = _frac(d, voxel)
            if weight is not None:
                f = f * weight
            hu[:] = hu * (1 - f) + np.asarray(value, np.float32) * f

        table_y = 5.0 + self.b + 22.0  # the scanner table under the back
        paint(np.maximum(np.abs(p[:, 1] - table_y) - 4.0,
                         np.abs(p[:, 0]) - 175.0), 120.0)
        paint(_ellipse_xy(p, 0, 5, self.a, self.b), -100.0)  # fat
        paint(_ellipse_xy(p, 0, 5, self.a - 14, self.b - 12), 40.0)  # muscle
        paint(_ellipsoid(p, *self.liver), LIVER_HU)
        body, arch, canal, process = self._spine(p)
        disc = np.mod(p[:, 2], 32.0) < 6.0
        paint(body, np.where(disc, 90.0, 900.0))  # cortex
        paint(body + 2.0, np.where(disc, 90.0, 250.0))  # cancellous bone
        paint(arch, 700.0)
        paint(canal, 15.0)
        paint(process, 650.0)
        lung_w = np.zeros(len(p), np.float32)
        for lung in self.lungs:
            lung_w = np.maximum(lung_w, _frac(_ellipsoid(p, *lung), voxel))
        paint(-np.ones(len(p)) * voxel, LUNG_HU + LUNG_GRADIENT * p[:, 1],
              lung_w)
        vessel_w = lung_w.copy()
        if lesions:  # keep vessels off the lesions' measuring shells
            for les in self.lesions:
                dist = np.linalg.norm(p - les.center.astype(np.float32), axis=1)
                vessel_w *= dist > les.radius + 8.0
        for a, b, r in self.vessels:
            # only the points near the segment: vessels are most of the
            # cost of a slice
            near = self._near(p, a, b, r + voxel, plane)
            if near is None:
                continue
            f = _frac(_capsule(p[near], a, b, r), voxel) * vessel_w[near]
            hu[near] = hu[near] * (1 - f) + 40.0 * f
        paint(_ellipsoid(p, *self.heart), 45.0)
        aorta, trachea, ribs, sternum = self._after_heart(p)
        paint(aorta, 170.0)
        paint(trachea, -1000.0)
        paint(ribs, 650.0)
        paint(sternum, 600.0)
        if lesions:
            for les in self.lesions:
                c = les.center.astype(np.float32)
                near = self._near(p, c, c, les.radius + voxel, plane)
                if near is None:
                    continue
                core = les.radius * (0.75 if les.lobes else 1.0)
                q = p[near]
                d = np.linalg.norm(q - c, axis=1) - core
                for lc, lr in les.lobes:
                    d = np.minimum(d, np.linalg.norm(
                        q - np.asarray(lc, np.float32), axis=1) - lr)
                f = _frac(d, voxel)
                hu[near] = hu[near] * (1 - f) + les.hu * f
        return hu

    def organ_distances(self, points: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """(organ, signed distance mm, negative inside) of ``points`` (N, 3)
        LPS for the surfaces the image is painted with, in painting order
        (a later one covers an earlier one where they overlap): the body
        outline, the liver, the spine (body), the lungs, the heart, then the
        aorta, trachea, ribs and sternum (body): a rib or the aorta is never
        liver or lung."""
        p = np.asarray(points, np.float32)
        return [('body', _ellipse_xy(p, 0, 5, self.a, self.b)),
                ('liver', _ellipsoid(p, *self.liver)),
                ('body', np.minimum.reduce(self._spine(p))),
                ('lungs', np.minimum(*[_ellipsoid(p, *lung)
                                       for lung in self.lungs])),
                ('heart', _ellipsoid(p, *self.heart)),
                ('body', np.minimum.reduce(self._after_heart(p)))]

    def sample(self, points: np.ndarray, voxel_mm: float) -> np.ndarray:
        """Noise-free HU at ``points`` (N, 3) LPS mm; ``voxel_mm`` sets the
        width of partial-volume edges."""
        return self._tissue(np.asarray(points, np.float32), float(voxel_mm))

    def sample_slice(self, origin: np.ndarray, axes: np.ndarray, size: int,
                     step: float) -> np.ndarray:
        """Noise-free HU (size, size) of the slice whose pixel (row j,
        column i) centre is ``origin + i*step*axes[0] + j*step*axes[1]``."""
        grid = np.arange(size, dtype=np.float32) * step
        axes = np.asarray(axes, np.float32)
        origin = np.asarray(origin, np.float32)
        points = (origin + grid[None, :, None] * axes[0]
                  + grid[:, None, None] * axes[1]).reshape(-1, 3)
        hu = self._tissue(points, float(step),
                          plane=(origin, axes, size, float(step)))
        return hu.reshape(size, size)
