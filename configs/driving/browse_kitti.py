# Look at KITTI-format training samples after augmentation before training:
#
#   perception synth-drive data/synth_drive      # or real KITTI data
#   perception browse configs/driving/browse_kitti.py --n 16 \
#       --cfg-options train_dataloader.dataset.data_root=data/kitti/training
#
# Pictures: boxes in class colours, ignore regions (DontCare, filtered
# boxes, boxes cut by the crop) shaded grey.
_base_ = ['../_base_/datasets/kitti_detection.py']
