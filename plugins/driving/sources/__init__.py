"""Camera sources of the driving plugin, each registered in ``SOURCES`` so
that :func:`perception.sources.open_source` opens it: video files, image
folders and sequences (with a timestamp sidecar), live MJPEG / RTSP
streams, ROS 1 / ROS 2 bags and multi-camera rigs (:mod:`.rig_spec` parses
the rig YAML). Names load on first use."""
from perception._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'VideoSource': 'perception_driving.sources.video',
    'VideoOpener': 'perception_driving.sources.video',
    'probe_fps': 'perception_driving.sources.video',
    'ImageFolderSource': 'perception_driving.sources.images',
    'ImageFolderOpener': 'perception_driving.sources.images',
    'StreamSource': 'perception_driving.sources.streams',
    'StreamOpener': 'perception_driving.sources.streams',
    'BagSource': 'perception_driving.sources.bags',
    'BagOpener': 'perception_driving.sources.bags',
    'decode_image_message': 'perception_driving.sources.bags',
    'RigSource': 'perception_driving.sources.rig',
    'RigOpener': 'perception_driving.sources.rig',
    'Undistorter': 'perception_driving.sources.rig',
    'RigError': 'perception_driving.sources.rig_spec',
    'RigSpec': 'perception_driving.sources.rig_spec',
    'CameraSpec': 'perception_driving.sources.rig_spec',
    'load_rig': 'perception_driving.sources.rig_spec',
})

