"""Populating a synthetic drive: :func:`build_scene` lays out the road and
places traffic, parked cars, riders, pedestrians, an intersection with
lights and people crossing, signs and scenery (trees, lamps, buildings),
every draw from one seeded generator, so a seed gives the same drive.
Coordinates and actor fields are those of :mod:`.scene`.
"""
from __future__ import annotations

import math

import numpy as np

from .options import LIGHTINGS, WEATHERS
from .scene import Actor, Road, Scene

CAR_COLORS = [(0.75, 0.75, 0.77), (0.08, 0.08, 0.09), (0.55, 0.56, 0.6),
              (0.6, 0.08, 0.07), (0.1, 0.18, 0.45), (0.92, 0.92, 0.9),
              (0.25, 0.3, 0.28), (0.45, 0.38, 0.3), (0.15, 0.35, 0.6)]
CLOTHES = [(0.1, 0.1, 0.12), (0.2, 0.25, 0.45), (0.6, 0.1, 0.1),
           (0.8, 0.8, 0.78), (0.35, 0.3, 0.25), (0.15, 0.4, 0.3),
           (0.85, 0.6, 0.2), (0.45, 0.45, 0.5)]
SKIN = [(0.87, 0.7, 0.58), (0.6, 0.42, 0.3), (0.35, 0.24, 0.18),
        (0.78, 0.6, 0.45)]


class _Builder:
    """Adds actors with ids in order and draws their looks from ``rng``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.actors = rng, []

    def add(self, kind: str, s0: float, x_rel: float, **kw) -> Actor:
        actor = Actor(len(self.actors) + 1, kind, float(s0), float(x_rel),
                      **kw)
        self.actors.append(actor)
        return actor

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def vehicle(self, s0: float, x_rel: float, speed: float,
                heading: float = 0.0, parked: bool = False) -> Actor:
        r, u = self.rng, self.rng.uniform
        kind = self.pick(['car'] * 12 + ['truck'] if parked
                         else ['car'] * 7 + ['truck', 'bus'])
        if kind == 'car':
            style = self.pick(['sedan', 'sedan', 'hatch', 'suv', 'van'])
            dims = {'sedan': (1.8, 1.45, 4.6), 'hatch': (1.75, 1.5, 4.0),
                    'suv': (1.9, 1.75, 4.8), 'van': (1.95, 2.1, 5.0)}[style]
            color = self.pick(CAR_COLORS)
        elif kind == 'truck':
            style, dims = 'truck', (2.45, u(3.2, 3.8), u(7.0, 10.0))
            color = self.pick([(0.85, 0.85, 0.82), (0.7, 0.15, 0.1),
                               (0.2, 0.3, 0.55), (0.9, 0.75, 0.2)])
        else:
            style, dims = 'bus', (2.55, 3.2, u(11.0, 12.5))
            color = self.pick([(0.9, 0.75, 0.1), (0.8, 0.1, 0.1),
                               (0.2, 0.45, 0.75), (0.92, 0.92, 0.9)])
        dims = tuple(d * u(0.97, 1.03) for d in dims)
        return self.add(kind, s0, x_rel, speed=speed, heading=heading,
                        dims=dims, color=color,
                        params={'style': style, 'brake': r.random() < 0.3,
                                'cargo': self.pick(CAR_COLORS)})

    def person(self, kind: str, s0: float, x_rel: float, speed: float = 0.0,
               cross: float = 0.0, heading: float = 0.0) -> Actor:
        u = self.rng.uniform
        h = u(1.55, 1.9)
        dims = {'pedestrian': (0.55, h, 0.35), 'cyclist': (0.6, 1.75, 1.75),
                'motorcyclist': (0.8, 1.55, 2.1)}[kind]
        return self.add(kind, s0, x_rel, speed=speed, cross_speed=cross,
                        heading=heading, dims=dims,
                        color=self.pick(CLOTHES),
                        params={'height': h, 'skin': self.pick(SKIN),
                                'legs': self.pick(CLOTHES),
                                'frame': self.pick(CAR_COLORS),
                                'phase': u(0, 2 * math.pi),
                                'helmet': self.pick(CAR_COLORS)})


def build_scene(seed: int = 0, frames: int = 20, fps: float = 10.0,
                lighting: str = 'day', weather: str = 'clear') -> Scene:
    """Populate a deterministic drive from ``seed``."""
    if lighting not in LIGHTINGS:
        raise ValueError(f'lighting={lighting!r}: choose from {LIGHTINGS}')
    if weather not in WEATHERS:
        raise ValueError(f'weather={weather!r}: choose from {WEATHERS}')
    rng = np.random.default_rng(seed)
    u = rng.uniform
    road = Road(lanes_right=int(rng.integers(1, 3)),
                lanes_left=int(rng.integers(1, 3)),
                amplitude=u(-7, 7), period=u(250, 450),
                phase=u(0, 2 * math.pi), sidewalk=u(3.0, 4.5))
    ego_lane = int(rng.integers(road.lanes_right))
    ego_speed = u(7.0, 12.0)
    duration = frames / fps
    z_end = ego_speed * duration + 170.0
    b = _Builder(rng)
    lw = road.lane_width
    # Traffic ahead and oncoming, lane by lane.
    for lane in range(-road.lanes_left, road.lanes_right):
        s = u(-30, -10) if lane != ego_lane else u(9, 18)
        while s < z_end:
            if lane >= 0:
                speed = ego_speed + u(-1.0, 1.5)
            else:
                speed = -u(7.0, 13.0)
            car = b.vehicle(s, road.lane_center(lane) + u(-0.3, 0.3), speed)
            if lane == ego_lane and car.s0 - car.dims[2] / 2 < 9.0:
                car.s0 = 9.0 + car.dims[2] / 2     # keep a gap to the ego
            s = car.s0 + car.dims[2] / 2 + u(9.0, 40.0)
    # Parked cars along both curbs.
    for side in (1, -1):
        edge = road.right_edge if side > 0 else road.left_edge
        s = u(-15, 5)
        while s < z_end:
            if rng.random() < 0.7:
                car = b.vehicle(s, edge - side * road.parking / 2, 0.0,
                                heading=u(-0.04, 0.04), parked=True)
                car.params['brake'] = False
            s += u(6.0, 14.0)
    # Riders near the right curb, in the traffic lane.
    for _ in range(int(rng.integers(1, 4))):
        kind = 'cyclist' if rng.random() < 0.6 else 'motorcyclist'
        x = (road.lanes_right * lw - 0.8 if kind == 'cyclist'
             else road.lane_center(int(rng.integers(road.lanes_right))) + 1.0)
        speed = u(4, 6.5) if kind == 'cyclist' else ego_speed + u(-0.5, 1.5)
        b.person(kind, u(8, z_end - 40), x, speed=speed)
    # Pedestrians walking on both sidewalks, a few standing.
    for side in (1, -1):
        edge = road.right_edge + road.curb if side > 0 else \
            road.left_edge - road.curb
        for _ in range(int(rng.integers(6, 14))):
            x = edge + side * u(0.5, road.sidewalk - 0.4)
            speed = 0.0 if rng.random() < 0.25 else \
                float(rng.choice([-1, 1])) * u(1.0, 1.6)
            b.person('pedestrian', u(0, z_end), x, speed=speed,
                     heading=float(rng.choice([0.0, math.pi / 2, math.pi])))
    # An intersection ahead: crosswalk, lights, people crossing.
    z_x = ego_speed * duration + u(35, 70)
    for _ in range(int(rng.integers(1, 4))):
        b.person('pedestrian', z_x + u(-1.5, 1.5),
                 u(road.left_edge, road.right_edge),
                 cross=float(rng.choice([-1, 1])) * u(1.0, 1.5))
    state = b.pick(['green', 'green', 'red', 'yellow'])
    for x, h in ((road.right_edge + road.curb + 0.6, 3.2),
                 (road.left_edge - road.curb - 0.6, 3.2),
                 (road.lane_center(road.lanes_right - 1), 5.6)):
        b.add('traffic_light', z_x + 8.0, x, heading=math.pi,
              dims=(0.34, 0.95, 0.3), color=(0.12, 0.12, 0.1),
              params={'state': state, 'height': h, 'mast': h > 5,
                      'pole_x': road.right_edge + road.curb + 0.6})
    # Signs on the right and left sidewalks.
    s = u(5, 25)
    while s < z_end:
        side = 1 if rng.random() < 0.7 else -1
        x = road.right_edge + road.curb + 0.4 if side > 0 else \
            road.left_edge - road.curb - 0.4
        shape = b.pick(['speed', 'speed', 'stop', 'yield', 'info', 'info',
                        'warning'])
        size = {'info': (0.9, 0.6), 'warning': (0.8, 0.7)}.get(shape,
                                                              (0.7, 0.7))
        b.add('traffic_sign', s, x, heading=math.pi if side > 0 else 0.0,
              dims=(size[0], size[1], 0.05), params={
                  'shape': shape, 'height': u(2.1, 2.8),
                  'facing': -side})
        s += u(25, 60)
    # Scenery: trees, street lamps, buildings (unlabeled occluders).
    for side in (1, -1):
        edge = road.right_edge + road.curb + road.sidewalk \
            if side > 0 else road.left_edge - road.curb - road.sidewalk
        s = u(-10, 10)
        while s < z_end + 40:
            if abs(s - z_x) > 12 and rng.random() < 0.75:
                b.add('tree', s, edge - side * u(0.6, 1.2),
                      dims=(u(2.5, 4.5), u(5.0, 9.0), 0.35),
                      color=(u(0.12, 0.25), u(0.3, 0.45), u(0.08, 0.15)),
                      params={'seed': int(rng.integers(1 << 30))})
            s += u(10, 18)
        s = u(0, 20)
        while s < z_end + 40:
            b.add('lamp', s, edge - side * (road.sidewalk - 0.4),
                  dims=(0.2, u(7.0, 8.5), 0.2), color=(0.3, 0.31, 0.33),
                  params={'side': side})
            s += u(28, 36)
        s = u(-30, -10)
        while s < z_end + 60:
            length = u(10, 28)
            if s + length > z_x - 10 and s < z_x + 12:
                s = z_x + 12       # the cross street
                continue
            b.add('building', s, edge + side * u(0.2, 2.5),
                  dims=(0.0, u(7, 28), length),
                  color=tuple(u(0.35, 0.8) * np.array(
                      b.pick([(1, 0.85, 0.7), (0.9, 0.9, 0.9),
                              (0.85, 0.6, 0.5), (0.7, 0.75, 0.8),
                              (1, 0.95, 0.8)]))),
                  params={'side': side, 'texture': int(rng.integers(4)),
                          'floor': u(3.0, 3.6)})
            s += length + u(0.0, 4.0)
    return Scene(seed, fps, frames, lighting, weather, road, b.actors,
                 road.lane_center(ego_lane), ego_speed, z_x)
