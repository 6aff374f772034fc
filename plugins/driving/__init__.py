"""perception_driving: camera, video, stream, bag and rig sources, driving
dataset formats and synthetic drives."""
from perception.sources import open_source
from perception_driving.sources import (bags, images,  # noqa: F401
                                        rig, streams, video)
from perception_driving import bench_decode, camera_feed  # noqa: F401
from perception_driving import bdd100k, coco, kitti, nuimages  # noqa: F401  (datasets)
from perception_driving import synth  # noqa: F401  (synth-drive)

__version__ = '0.1.0'
__all__ = ['open_source']
