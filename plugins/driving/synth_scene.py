"""Scene model of synthetic drives: a curving city road, the camera rig on
the ego vehicle, and the actors (vehicles, people, riders, traffic lights,
signs, trees, lamps, buildings) with their motion over time.

Frames. The world is metric and right-handed with X right, Y up and Z along
the road (forward at the start of the drive); the ground is ``Y = 0``. The
road's centre line curves gently: ``X = road.center(Z)``. Actors are placed
in road coordinates (``s`` along the road, ``x_rel`` across it, positive to
the right of the centre line). The ego vehicle frame is ISO 8855 / ROS
(x forward, y left, z up, origin on the ground), and camera extrinsics are
camera-to-vehicle transforms as in ``docs/rig.md``. Cameras follow OpenCV:
optical frame x right, y down, z forward; pixel centres at integer
coordinates in the intrinsics ``K``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LIGHTINGS = ('day', 'dusk', 'night')
WEATHERS = ('clear', 'rain', 'fog')

# Labeled classes of the unified driving taxonomy each actor kind produces.
ACTOR_CLASSES = {
    'car': ('car', ), 'truck': ('truck', ), 'bus': ('bus', ),
    'pedestrian': ('pedestrian', ), 'cyclist': ('rider', 'bicycle'),
    'motorcyclist': ('rider', 'motorcycle'),
    'traffic_light': ('traffic light', ), 'traffic_sign': ('traffic sign', ),
}


@dataclass
class CameraModel:
    """A pinhole camera of the rig.

    Attributes:
        name: camera name (``front``, ``front_left``...).
        width, height: image size in pixels.
        K: 3x3 intrinsics (OpenCV: pixel centres at integers).
        T_vc: 4x4 camera-to-vehicle transform (``p_vehicle = R p_cam + t``).
    """

    name: str
    width: int
    height: int
    K: np.ndarray
    T_vc: np.ndarray


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float64)


# Optical frame (x right, y down, z forward) -> vehicle (x fwd, y left, z up).
OPTICAL_TO_VEHICLE = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], np.float64)

RIG_LAYOUT = {  # name: (yaw to the left in degrees, translation in vehicle m)
    'front': (0.0, (1.60, 0.0, 1.45)),
    'front_left': (55.0, (1.50, 0.45, 1.45)),
    'front_right': (-55.0, (1.50, -0.45, 1.45)),
}


def make_rig(cameras: int = 1, width: int = 640, height: int = 360,
             hfov_deg: float = 70.0) -> list[CameraModel]:
    """Build a front camera, plus left and right cameras when ``cameras`` is
    2 or 3 (the second camera is ``front_left``)."""
    if not 1 <= cameras <= 3:
        raise ValueError(f'cameras={cameras}: choose 1, 2 or 3 (front, '
                         'front_left, front_right)')
    fx = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    K = np.array([[fx, 0, (width - 1) / 2.0], [0, fx, (height - 1) / 2.0],
                  [0, 0, 1]], np.float64)
    rig = []
    for name in list(RIG_LAYOUT)[:cameras]:
        yaw, trans = RIG_LAYOUT[name]
        T = np.eye(4)
        T[:3, :3] = _rot_z(math.radians(yaw)) @ OPTICAL_TO_VEHICLE
        T[:3, 3] = trans
        rig.append(CameraModel(name, width, height, K.copy(), T))
    return rig


@dataclass
class Road:
    """Road layout across (``x_rel``, metres right of the centre line) and
    its centre line along ``Z``."""

    lanes_right: int = 2
    lanes_left: int = 2
    lane_width: float = 3.5
    parking: float = 2.4          # parking strip beside the outer lanes
    curb: float = 0.25
    sidewalk: float = 3.5
    amplitude: float = 5.0
    period: float = 320.0
    phase: float = 0.0

    def center(self, z):
        w = 2 * math.pi / self.period
        return self.amplitude * (np.sin(w * np.asarray(z) + self.phase)
                                 - math.sin(self.phase))

    def slope(self, z):
        w = 2 * math.pi / self.period
        return self.amplitude * w * np.cos(w * np.asarray(z) + self.phase)

    @property
    def right_edge(self) -> float:
        return self.lanes_right * self.lane_width + self.parking

    @property
    def left_edge(self) -> float:
        return -(self.lanes_left * self.lane_width + self.parking)

    def lane_center(self, lane: int) -> float:
        """Centre of lane ``lane``: 0, 1... to the right of the centre line,
        -1, -2... to its left (oncoming traffic)."""
        return (lane + 0.5) * self.lane_width


@dataclass
class Actor:
    """Something in the scene. Moving actors go along the road at
    ``speed`` (m/s, negative for oncoming) and across it at ``cross_speed``.

    ``heading`` (radians, relative to the road direction) is used when the
    actor does not move (signs, lights, parked cars)."""

    id: int
    kind: str
    s0: float
    x_rel: float
    speed: float = 0.0
    cross_speed: float = 0.0
    heading: float = 0.0
    dims: tuple = (1.0, 1.0, 1.0)     # width, height, length (metres)
    color: tuple = (0.5, 0.5, 0.5)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> tuple:
        return ACTOR_CLASSES.get(self.kind, ())

    def object_ids(self) -> list[int]:
        """Ids of this actor's labeled objects (person first for riders)."""
        return [self.id * 4 + k + 1 for k in range(len(self.classes))]


@dataclass
class Scene:
    """A whole drive: road, actors, ego motion, lighting and weather."""

    seed: int
    fps: float
    frames: int
    lighting: str
    weather: str
    road: Road
    actors: list[Actor]
    ego_x_rel: float
    ego_speed: float
    crossing_s: float = 1e9       # where the crosswalk and lights are
    start_time_ns: int = 1_700_000_000_000_000_000

    def time(self, frame: int) -> float:
        return frame / self.fps

    def timestamp_ns(self, frame: int, offset_ns: int = 0) -> int:
        return self.start_time_ns + offset_ns + int(round(frame * 1e9
                                                          / self.fps))

    def objects(self) -> dict[int, tuple[str, Actor]]:
        """Every labeled object: id -> (class name, actor)."""
        out = {}
        for actor in self.actors:
            for oid, cls in zip(actor.object_ids(), actor.classes):
                out[oid] = (cls, actor)
        return out

    def ego_pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """World-from-vehicle rotation (3x3) and vehicle origin (3,)."""
        z = self.ego_speed * t
        psi = math.atan(float(self.road.slope(z)))
        x_axis = [math.sin(psi), 0.0, math.cos(psi)]     # forward
        y_axis = [-math.cos(psi), 0.0, math.sin(psi)]    # left
        R = np.array([x_axis, y_axis, [0.0, 1.0, 0.0]]).T
        return R, np.array([float(self.road.center(z)) + self.ego_x_rel,
                            0.0, z])

    def camera_pose(self, cam: CameraModel, t: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """World-from-camera rotation (3x3) and camera centre (3,)."""
        R_wv, p = self.ego_pose(t)
        return R_wv @ cam.T_vc[:3, :3], p + R_wv @ cam.T_vc[:3, 3]

    def actor_pose(self, actor: Actor, t: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """World-from-local rotation (local: x right, y up, z forward) and
        the actor's ground position."""
        s = actor.s0 + actor.speed * t
        x_rel = actor.x_rel + actor.cross_speed * t
        if actor.speed or actor.cross_speed:
            heading = math.atan2(actor.cross_speed, actor.speed)
        else:
            heading = actor.heading
        heading += math.atan(float(self.road.slope(s)))
        c, s_ = math.cos(heading), math.sin(heading)
        R = np.array([[c, 0, s_], [0, 1, 0], [-s_, 0, c]], np.float64)
        return R, np.array([float(self.road.center(s)) + x_rel, 0.0, s])


# -- populating a drive -----------------------------------------------------

CAR_COLORS = [(0.75, 0.75, 0.77), (0.08, 0.08, 0.09), (0.55, 0.56, 0.6),
              (0.6, 0.08, 0.07), (0.1, 0.18, 0.45), (0.92, 0.92, 0.9),
              (0.25, 0.3, 0.28), (0.45, 0.38, 0.3), (0.15, 0.35, 0.6)]
CLOTHES = [(0.1, 0.1, 0.12), (0.2, 0.25, 0.45), (0.6, 0.1, 0.1),
           (0.8, 0.8, 0.78), (0.35, 0.3, 0.25), (0.15, 0.4, 0.3),
           (0.85, 0.6, 0.2), (0.45, 0.45, 0.5)]
SKIN = [(0.87, 0.7, 0.58), (0.6, 0.42, 0.3), (0.35, 0.24, 0.18),
        (0.78, 0.6, 0.45)]


class _Builder:
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
