# Cityscapes semantic segmentation (19 classes), ConvNeXt-Atto + FPN +
# FPNSegHead from scratch, 40k iterations of batch 8 at 1024x512 (its FCMAE
# twin: fpnseg_convnext-atto-fcmae_fpn_40k_cityscapes.py). Data layout:
# configs/_base_/datasets/cityscapes_semseg.py.
#
#   NAME=fpnseg_convnext-atto_fpn_40k_cityscapes
#   perception train configs/segmentation/$NAME.py --amp
#   perception test configs/segmentation/$NAME.py work_dirs/$NAME --show-dir pictures/
_base_ = [
    '../_base_/models/seg_convnext-atto_fpn.py',
    '../_base_/datasets/cityscapes_semseg.py',
    '../_base_/schedules/finetune_40k.py',
]
model = dict(class_names=[
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
    'truck', 'bus', 'train', 'motorcycle', 'bicycle'])
