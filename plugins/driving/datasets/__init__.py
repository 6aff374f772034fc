"""Driving datasets, registered in ``DATASETS``: KITTI, BDD100K, nuImages
and COCO detection readers over one shared base (:mod:`.base_det_dataset`:
class maps, box checks, :mod:`.box_filters`, the bad-sample policy);
label-map readers (BDD100K sem_seg / drivable, Cityscapes-style with a
class map of the stored ids: :mod:`.seg_dataset`); BDD100K frame attributes
for scene classification; and camera feeds (videos, streams, bags) decoded
once into a frame cache for pretraining. Built-in class maps
(``class_maps/*.yaml``) map every format's classes onto the unified driving
taxonomy. Names load on first use."""
from perception._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'KittiDataset': 'perception_driving.datasets.kitti',
    'Bdd100kDataset': 'perception_driving.datasets.bdd100k',
    'NuImagesDataset': 'perception_driving.datasets.nuimages',
    'CocoDetDataset': 'perception_driving.datasets.coco',
    'CameraFeedDataset': 'perception_driving.datasets.camera_feed',
    'Bdd100kSegDataset': 'perception_driving.datasets.bdd100k_seg',
    'Bdd100kSceneDataset': 'perception_driving.datasets.bdd100k_scene',
    'CityscapesDataset': 'perception_driving.datasets.cityscapes',
    'load_seg_class_map': 'perception_driving.datasets.seg_class_map',
    'DrivingDetDataset': 'perception_driving.datasets.base_det_dataset',
    'BoxFilter': 'perception_driving.datasets.box_filters',
    'ClassMap': 'perception_driving.datasets.class_mapping',
    'ClassCounter': 'perception_driving.datasets.class_mapping',
    'UnmappedClassError': 'perception_driving.datasets.class_mapping',
    'IGNORE_LABEL': 'perception_driving.datasets.class_mapping',
    'load_class_map': 'perception_driving.datasets.class_mapping',
    'builtin_class_maps': 'perception_driving.datasets.class_mapping',
})
