"""Synthetic drives: :func:`render_drive`, :func:`write_drive` and
:func:`generate_drive` (both in one call; the ``synth-drive`` command,
:mod:`perception_driving.commands`, runs it).

A seeded drive (:mod:`.populate`) through a city street seen by a one- to
three-camera rig, rendered with numpy/OpenCV (:mod:`.render`,
:mod:`.effects`), labeled exactly from the scene geometry (:mod:`.labels`)
and written in every format the driving plugin reads
(:mod:`.sensor_writers`, :mod:`.label_writers`). The same seed gives the same
labels byte for byte and the same pixels (within 2 grey levels across
platforms, exactly on one machine).

Layout of ``OUT``::

    drive.json                    parameters, counts, paths
    labels/<camera>.json          the labels as generated (pixel-edge xyxy)
    images/<camera>/000000.png    image folders with timestamps.csv
    video/<camera>.mp4            H.264, frame i at i / fps seconds
    rig.rig.yaml                  (2-3 cameras) rig over the videos
    bag/                          ROS 2 bag: raw, compressed, camera_info
    kitti/training/...            KITTI (front camera) + class_map.yaml
    bdd100k/labels/det_20/det_train.json, bdd100k/images/100k/train/
    bdd100k/labels/{sem_seg,drivable}/masks/train/, bdd100k/images/10k/train/
    cityscapes/{leftImg8bit,gtFine}/train/synth/ + class_map.yaml
    coco/annotations/instances.json, coco/images/
    nuimages/v1.0-mini/*.json, nuimages/samples/<CHANNEL>/ + class_map.yaml
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from perception.progress import progress
from perception.structures import DRIVING_CLASSES

from .effects import finish
from .ground import Textures
from .label_writers import (
    place_file,
    rotation_to_quaternion,
    write_bdd100k,
    write_coco,
    write_kitti,
    write_nuimages,
)
from .labels import FrameLabels, compute_labels
from .options import FORMATS
from .populate import build_scene
from .render import render_view
from .scene import CameraModel, Scene, make_rig
from .semantics import write_bdd100k_masks, write_cityscapes
from .sensor_writers import write_bag, write_image_folder, write_rig, write_video

BDD_TIMEOFDAY = {'day': 'daytime', 'dusk': 'dawn/dusk', 'night': 'night'}
BDD_WEATHER = {'clear': 'clear', 'rain': 'rainy', 'fog': 'foggy'}
# Our world is X right, Y up, Z forward (left-handed); nuScenes' global
# frame is right-handed with z up: (x, y, z) = (Z, -X, Y).
WORLD_TO_ZUP = np.array([[0.0, 0, 1], [-1, 0, 0], [0, 1, 0]])


@dataclass
class Drive:
    """A rendered drive in memory."""

    scene: Scene
    rig: list[CameraModel]
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)
    labels: dict[str, list[FrameLabels]] = field(default_factory=dict)
    #: per camera and frame: (classes, drivable) (H, W) uint8 label maps
    #: (:mod:`.semantics`)
    masks: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(
        default_factory=dict)

    @property
    def timestamps_ns(self) -> list[int]:
        return [self.scene.timestamp_ns(i) for i in range(self.scene.frames)]


def render_drive(seed: int = 0, frames: int = 20,
                 size: Sequence[int] = (640, 360), cameras: int = 1,
                 lighting: str = 'day', weather: str = 'clear',
                 fps: float = 10.0, min_height: float = 10.0,
                 max_occlusion: float = 0.8, quiet: bool | None = None
                 ) -> Drive:
    """Render a drive and its labels in memory (no files).

    Args:
        seed: everything random follows from it.
        frames: frames per camera.
        size: (width, height) of every camera.
        cameras: 1 (front), 2 (+ front_left) or 3 (+ front_right).
        lighting: 'day', 'dusk' or 'night'.
        weather: 'clear', 'rain' or 'fog'.
        fps: frame rate (the ego moves at 7-12 m/s).
        min_height, max_occlusion: objects lower than ``min_height`` pixels
            or hidden more than ``max_occlusion`` become ignore regions.
        quiet: no progress display (None: :mod:`perception.progress`'s
            setting).
    """
    if frames < 1:
        raise ValueError(f'frames={frames}: need at least 1 frame')
    if not fps > 0:
        raise ValueError(f'fps={fps}: must be positive')
    width, height = (int(v) for v in size)
    if width < 32 or height < 32:
        raise ValueError(f'size={tuple(size)}: width and height must be at '
                         'least 32 pixels')
    scene = build_scene(seed, frames, fps, lighting, weather)
    rig = make_rig(cameras, width, height)
    tex = Textures(scene)
    drive = Drive(scene, rig)
    bar = progress(total=frames * len(rig), desc='synth-drive: rendering',
                   unit='frame', quiet=quiet)
    for k, cam in enumerate(rig):
        drive.images[cam.name], drive.labels[cam.name] = [], []
        drive.masks[cam.name] = []
        for i in range(frames):
            view = render_view(scene, cam, i, tex)
            drive.masks[cam.name].append((view.classes, view.drivable))
            drive.labels[cam.name].append(compute_labels(
                scene, cam, view, i, min_height, max_occlusion))
            drive.images[cam.name].append(finish(scene, cam, view, tex, i,
                                                 k))
            bar.update()
    bar.close()
    return drive


def _ego_poses(drive: Drive) -> list[tuple]:
    poses = []
    for i in range(drive.scene.frames):
        R_wv, p = drive.scene.ego_pose(drive.scene.time(i))
        poses.append(([float(v) for v in WORLD_TO_ZUP @ p],
                      rotation_to_quaternion(WORLD_TO_ZUP @ R_wv),
                      drive.scene.timestamp_ns(i)))
    return poses


def write_drive(drive: Drive, out: str,
                formats: Sequence[str] = FORMATS,
                overwrite: bool = False, quiet: bool | None = None) -> dict:
    """Write a rendered drive in ``formats`` under ``out``; returns the
    summary also written to ``out/drive.json``. Progress is shown per
    format (``quiet`` as in :func:`render_drive`).

    Raises:
        FileExistsError: ``out`` holds files and ``overwrite`` is False
            (nothing of a user's folder is replaced by accident).
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; choose "
                         f"from {', '.join(FORMATS)}")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise FileExistsError(
            f'{out} is not empty; choose an empty or new folder, or pass '
            'overwrite=True (--overwrite) to write the drive over it')
    scene, rig, stamps = drive.scene, drive.rig, drive.timestamps_ns
    steps = set(formats) | {'images'} | ({'video'} if 'rig' in formats
                                         else set())
    bar = progress(total=len(steps),
                   desc='synth-drive: writing', unit='format', quiet=quiet)
    os.makedirs(out, exist_ok=True)
    paths: dict[str, object] = {}
    os.makedirs(os.path.join(out, 'labels'), exist_ok=True)
    for cam in rig:
        with open(os.path.join(out, 'labels', f'{cam.name}.json'), 'w',
                  encoding='utf-8') as f:
            json.dump([fl.to_dict() for fl in drive.labels[cam.name]], f,
                      indent=0)
    # Image folders are always written: the label formats link to them.
    image_paths = {cam.name: write_image_folder(
        os.path.join(out, 'images', cam.name), drive.images[cam.name],
        stamps) for cam in rig}
    paths['images'] = {c.name: f'images/{c.name}' for c in rig}
    bar.update()
    if 'video' in formats or 'rig' in formats:
        for cam in rig:
            write_video(os.path.join(out, 'video', f'{cam.name}.mp4'),
                        drive.images[cam.name], scene.fps)
        paths['video'] = {c.name: f'video/{c.name}.mp4' for c in rig}
        bar.update()
    notes = []
    if 'rig' in formats and len(rig) > 1:
        write_rig(os.path.join(out, 'rig.rig.yaml'), rig,
                  {c.name: f'video/{c.name}.mp4' for c in rig})
        paths['rig'] = 'rig.rig.yaml'
    elif 'rig' in formats:
        notes.append('rig: not written, a rig needs 2 or 3 cameras '
                     '(--cameras 2 or 3)')
    if 'rig' in formats:
        bar.update()
    if 'bag' in formats:
        write_bag(os.path.join(out, 'bag'), rig, drive.images, stamps)
        paths['bag'] = 'bag'
        bar.update()
    front = rig[0].name
    names = [f'{i:06d}.png' for i in range(scene.frames)]
    if 'kitti' in formats:
        write_kitti(os.path.join(out, 'kitti'), [
            (n[:-4], p, fl) for n, p, fl in zip(
                names, image_paths[front], drive.labels[front])])
        paths['kitti'] = 'kitti/training'
        bar.update()
    if 'bdd100k' in formats:
        for n, p in zip(names, image_paths[front]):
            place_file(p, os.path.join(out, 'bdd100k', 'images', '100k',
                                       'train', n))
        write_bdd100k(os.path.join(out, 'bdd100k', 'labels', 'det_20',
                                   'det_train.json'),
                      list(zip(names, drive.labels[front])),
                      BDD_WEATHER[scene.weather],
                      BDD_TIMEOFDAY[scene.lighting])
        write_bdd100k_masks(os.path.join(out, 'bdd100k'), [
            (n, p, *m) for n, p, m in zip(names, image_paths[front],
                                          drive.masks[front])], place_file)
        paths['bdd100k'] = 'bdd100k/labels/det_20/det_train.json'
        paths['bdd100k_sem_seg'] = 'bdd100k/labels/sem_seg/masks/train'
        paths['bdd100k_drivable'] = 'bdd100k/labels/drivable/masks/train'
        bar.update()
    if 'cityscapes' in formats:
        write_cityscapes(os.path.join(out, 'cityscapes'), [
            (n[:-4], p, m[0]) for n, p, m in zip(names, image_paths[front],
                                                 drive.masks[front])],
            place_file)
        paths['cityscapes'] = 'cityscapes'
        bar.update()
    if 'coco' in formats:
        for n, p in zip(names, image_paths[front]):
            place_file(p, os.path.join(out, 'coco', 'images', n))
        write_coco(os.path.join(out, 'coco', 'annotations',
                                'instances.json'),
                   list(zip(names, drive.labels[front])), DRIVING_CLASSES)
        paths['coco'] = 'coco/annotations/instances.json'
        bar.update()
    if 'nuimages' in formats:
        items = [(cam.name, p, fl) for cam in rig for p, fl in zip(
            image_paths[cam.name], drive.labels[cam.name])]
        write_nuimages(os.path.join(out, 'nuimages'), rig, items,
                       _ego_poses(drive))
        paths['nuimages'] = 'nuimages'
        bar.update()
    bar.close()
    counts: dict[str, int] = {}
    ignored = 0
    for fls in drive.labels.values():
        for fl in fls:
            for o in fl.objects:
                counts[o.category] = counts.get(o.category, 0) + 1
                ignored += o.ignore
    summary = {'seed': scene.seed, 'frames': scene.frames, 'fps': scene.fps,
               'size': [rig[0].width, rig[0].height],
               'cameras': [c.name for c in rig], 'lighting': scene.lighting,
               'weather': scene.weather,
               'start_time_ns': scene.start_time_ns,
               'video_time_zero_ns': scene.start_time_ns,
               'boxes_per_class': dict(sorted(counts.items())),
               'ignore_regions': ignored, 'paths': paths, 'notes': notes}
    with open(os.path.join(out, 'drive.json'), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=1)
    return summary


def generate_drive(out: str, seed: int = 0, frames: int = 20,
                   size: Sequence[int] = (640, 360), cameras: int = 1,
                   lighting: str = 'day', weather: str = 'clear',
                   fps: float = 10.0, formats: Sequence[str] = FORMATS,
                   overwrite: bool = False, quiet: bool | None = None) -> dict:
    """Render a drive (:func:`render_drive`) and write it
    (:func:`write_drive`) under ``out``; returns the summary."""
    drive = render_drive(seed, frames, size, cameras, lighting, weather, fps,
                         quiet=quiet)
    return write_drive(drive, out, formats, overwrite, quiet=quiet)
