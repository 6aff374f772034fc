"""perception_driving: camera, video, stream, bag and rig sources
(:mod:`.sources`), driving dataset formats (:mod:`.datasets`), synthetic
drives (:mod:`.synth`), KITTI's 2D metric (:mod:`.evaluation`), the
``synth-drive`` command (:mod:`.commands`) and
the ``decode`` benchmark (:mod:`.benchmarks`).

Importing the package is cheap (no torch, no submodule): public names load
on first use, and plugin discovery calls :func:`register`, which imports
the modules that register the plugin's classes.
"""
from perception._lazy import import_all, lazy_exports

__version__ = '0.1.0'

#: Modules whose import registers the plugin's sources, datasets,
#: benchmarks and commands in the core's registries.
REGISTERING_MODULES = (
    'perception_driving.sources.video',
    'perception_driving.sources.images',
    'perception_driving.sources.streams',
    'perception_driving.sources.bags',
    'perception_driving.sources.rig',
    'perception_driving.datasets.kitti',
    'perception_driving.datasets.bdd100k',
    'perception_driving.datasets.nuimages',
    'perception_driving.datasets.coco',
    'perception_driving.datasets.camera_feed',
    'perception_driving.datasets.bdd100k_seg',
    'perception_driving.datasets.bdd100k_scene',
    'perception_driving.datasets.cityscapes',
    'perception_driving.evaluation',
    'perception_driving.benchmarks',
    'perception_driving.commands',
    'perception_driving.demo',                   # DEMOS: driving
)
#: Modules that register the plugin's subcommands and import no torch
#: (``perception --help`` imports only these).
COMMAND_MODULES = ('perception_driving.commands', )

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'open_source': 'perception.sources',
    'KittiDataset': 'perception_driving.datasets.kitti',
    'Bdd100kDataset': 'perception_driving.datasets.bdd100k',
    'NuImagesDataset': 'perception_driving.datasets.nuimages',
    'CocoDetDataset': 'perception_driving.datasets.coco',
    'CameraFeedDataset': 'perception_driving.datasets.camera_feed',
    'Bdd100kSegDataset': 'perception_driving.datasets.bdd100k_seg',
    'Bdd100kSceneDataset': 'perception_driving.datasets.bdd100k_scene',
    'CityscapesDataset': 'perception_driving.datasets.cityscapes',
    'KittiMetric': 'perception_driving.evaluation',
    'load_class_map': 'perception_driving.datasets.class_mapping',
    'load_rig': 'perception_driving.sources.rig_spec',
    'RigSource': 'perception_driving.sources.rig',
    'generate_drive': 'perception_driving.synth.drive',
    'render_drive': 'perception_driving.synth.drive',
})


def register() -> None:
    """Register the plugin's sources, datasets, benchmarks and commands
    (plugin discovery calls this after importing the package)."""
    import_all(REGISTERING_MODULES)
