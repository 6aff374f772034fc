# BDD100K drivable area (direct / alternative / background), ConvNeXt-Atto +
# FPN + FPNSegHead from scratch, 40k iterations of batch 8 at 640x360 (its
# FCMAE twin: fpnseg_convnext-atto-fcmae_fpn_40k_bdd100k-drivable.py). Data
# layout: configs/_base_/datasets/bdd100k_drivable.py.
#
#   NAME=fpnseg_convnext-atto_fpn_40k_bdd100k-drivable
#   perception train configs/segmentation/$NAME.py --amp
#   perception test configs/segmentation/$NAME.py work_dirs/$NAME --show-dir pictures/
_base_ = [
    '../_base_/models/seg_convnext-atto_fpn.py',
    '../_base_/datasets/bdd100k_drivable.py',
    '../_base_/schedules/finetune_40k.py',
]
model = dict(class_names=['direct', 'alternative', 'background'])
