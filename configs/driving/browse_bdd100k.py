# Look at BDD100K-format training samples after augmentation:
#
#   perception browse configs/driving/browse_bdd100k.py --n 16 \
#       --cfg-options train_dataloader.dataset.data_root=data/bdd100k
#
# Pictures: boxes in class colours, ignore regions ("other vehicle",
# "other person", "trailer", boxes cut by the crop) shaded grey.
_base_ = ['../_base_/datasets/bdd100k_detection.py']
