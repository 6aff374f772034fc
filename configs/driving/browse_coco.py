# Look at COCO-format training samples (letterboxed to 640):
#
#   perception browse configs/driving/browse_coco.py --n 16 \
#       --cfg-options train_dataloader.dataset.data_root=data/coco
_base_ = ['../_base_/datasets/coco_detection.py']
