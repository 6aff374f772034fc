# ViT-Tiny (patch 16) + simple feature pyramid -> TAL head on KITTI, from scratch, 24 epochs.
# KITTI object benchmark layout (image_2/, label_2/, calib/ under
# training/), 2D boxes in the unified driving taxonomy. A generated drive:
#
#   perception synth-drive data/drive --formats kitti
#   perception train configs/detection/tal_vit-tiny-p16_simplefpn_24e_kitti.py --cfg-options \
#       train_dataloader.dataset.data_root=data/drive/kitti/training/ \
#       train_dataloader.dataset.class_map=data/drive/kitti/class_map.yaml \
#       val_dataloader.dataset.data_root=data/drive/kitti/training/ \
#       val_dataloader.dataset.class_map=data/drive/kitti/class_map.yaml
#
# Real KITTI: download the left colour images and the training labels of
# the object benchmark, unpack into data/kitti/ (data/kitti/training/
# image_2, label_2) and run
#   `perception train configs/detection/tal_vit-tiny-p16_simplefpn_24e_kitti.py` as it is
# (KITTI has no official val split: pass split_file= to both datasets).
_base_ = [
    '../_base_/models/det_vit-tiny-p16_simplefpn.py',
    '../_base_/datasets/kitti_detection.py',
    '../_base_/schedules/finetune_detection.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(img_size=(320, 960)))
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(960, 320), keep_ratio=True),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoMetric'), dict(type='KittiMetric')]
test_evaluator = val_evaluator
