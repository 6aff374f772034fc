"""Datasets, transforms and data helpers shared by every domain."""
from perception.data.albu import Albumentations
from perception.data.base_dataset import BadSampleError, PerceptionDataset
from perception.data.boxes import convert_boxes, transform_boxes
from perception.data.geometry import boxes_to_source, points_to_lps
from perception.data.image_folder import ImageFolderDataset
from perception.data.mix import MixUp, Mosaic
from perception.data.mix_dataset import MultiImageMixDataset
from perception.data.pretrained_cfg import PretrainedCfg
from perception.data.seg_geometry import seg_to_source
from perception.data.seg_maps import LoadSegMap, SegLabelError
from perception.data.subset import LabelSubsetDataset
from perception.data.synth import write_shape_images
from perception.data.transforms import (
                                        BaseTransform,
                                        LoadImage,
                                        PackInputs,
                                        RandomFlip,
                                        RandomResizedCrop,
                                        Resize,
)
from perception.data.windowing import apply_window, apply_windows

__all__ = [
    'BadSampleError', 'PretrainedCfg', 'boxes_to_source', 'points_to_lps',
    'PerceptionDataset', 'ImageFolderDataset',
    'write_shape_images', 'BaseTransform', 'LoadImage', 'PackInputs',
    'RandomFlip', 'RandomResizedCrop', 'Resize', 'apply_window',
    'apply_windows', 'Albumentations', 'convert_boxes', 'transform_boxes',
    'Mosaic', 'MixUp', 'MultiImageMixDataset', 'LoadSegMap', 'SegLabelError',
    'seg_to_source', 'LabelSubsetDataset'
]
