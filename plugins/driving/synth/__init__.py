"""Synthetic drives: a seeded city drive seen by a one- to three-camera rig,
rendered with numpy/OpenCV, labeled exactly from the scene geometry and
written in every format the driving plugin reads (``perception
synth-drive OUT``). Names load on first use.

Parts, in the order a drive is made: :mod:`.options` (lighting, weather,
formats), :mod:`.scene` (road, rig, actors and their motion),
:mod:`.populate` (a scene from a seed), :mod:`.actors` and :mod:`.figures`
(actors as world-space polygons), :mod:`.ground` (road and sky textures),
:mod:`.render` (rasterising a view), :mod:`.effects` (lighting, weather,
optics, sensor), :mod:`.labels` (boxes and 3D labels from the geometry),
:mod:`.sensor_writers` and :mod:`.label_writers` (the file formats),
:mod:`.drive` (all of it in one call) and :mod:`.picture` (the docs
picture).
"""
from perception._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'generate_drive': 'perception_driving.synth.drive',
    'render_drive': 'perception_driving.synth.drive',
    'write_drive': 'perception_driving.synth.drive',
    'Drive': 'perception_driving.synth.drive',
    'FORMATS': 'perception_driving.synth.options',
    'LIGHTINGS': 'perception_driving.synth.options',
    'WEATHERS': 'perception_driving.synth.options',
    'build_scene': 'perception_driving.synth.populate',
    'make_rig': 'perception_driving.synth.scene',
    'Scene': 'perception_driving.synth.scene',
    'Road': 'perception_driving.synth.scene',
    'Actor': 'perception_driving.synth.scene',
    'CameraModel': 'perception_driving.synth.scene',
    'render_view': 'perception_driving.synth.render',
    'View': 'perception_driving.synth.render',
    'Textures': 'perception_driving.synth.ground',
    'finish': 'perception_driving.synth.effects',
    'compute_labels': 'perception_driving.synth.labels',
    'FrameLabels': 'perception_driving.synth.labels',
    'ObjectLabel': 'perception_driving.synth.labels',
    'write_image_folder': 'perception_driving.synth.sensor_writers',
    'write_video': 'perception_driving.synth.sensor_writers',
    'write_rig': 'perception_driving.synth.sensor_writers',
    'write_bag': 'perception_driving.synth.sensor_writers',
    'write_kitti': 'perception_driving.synth.label_writers',
    'write_bdd100k': 'perception_driving.synth.label_writers',
    'write_coco': 'perception_driving.synth.label_writers',
    'write_nuimages': 'perception_driving.synth.label_writers',
    'draw_labels': 'perception_driving.synth.picture',
    'write_sample_picture': 'perception_driving.synth.picture',
    'SynthDriveCommand': 'perception_driving.commands',
})
