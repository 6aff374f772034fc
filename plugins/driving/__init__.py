"""perception_driving: camera, video, stream, bag and rig sources, driving
dataset formats and synthetic drives."""
from perception.sources import open_source
from perception_driving.sources import (bags, images,  # noqa: F401
                                        rig, streams, video)
from perception_driving import benchmarks  # noqa: F401
from perception_driving.datasets import (bdd100k,  # noqa: F401
                                         camera_feed, coco, kitti,
                                         nuimages)
from perception_driving import commands  # noqa: F401  (synth-drive)

__version__ = '0.1.0'
__all__ = ['open_source']
