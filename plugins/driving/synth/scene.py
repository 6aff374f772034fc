"""Scene model of synthetic drives: a curving city road, the camera rig on
the ego vehicle, and the actors (vehicles, people, riders, traffic lights,
signs, trees, lamps, buildings) with their motion over time;
:func:`~.populate.build_scene` fills one from a seed.

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
