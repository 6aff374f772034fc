# Look at nuImages (or nuScenes, mode='nuscenes') training samples:
#
#   perception browse configs/driving/browse_nuimages.py --n 16 \
#       --cfg-options train_dataloader.dataset.data_root=data/nuimages \
#       train_dataloader.dataset.version=v1.0-mini
_base_ = ['../_base_/datasets/nuimages_detection.py']
