# ViT-Tiny (patch 16) + simple feature pyramid -> TAL head on BDD100K, from scratch, 24 epochs.
# BDD100K 2D detection layout (images/100k/{train,val}/,
# labels/det_20/det_{train,val}.json). A generated drive:
#
#   perception synth-drive data/drive --formats bdd100k
#   perception train configs/detection/tal_vit-tiny-p16_simplefpn_24e_bdd100k.py --cfg-options \
#       train_dataloader.dataset.data_root=data/drive/bdd100k/ \
#       val_dataloader.dataset.data_root=data/drive/bdd100k/ \
#       val_dataloader.dataset.ann_file=labels/det_20/det_train.json \
#       val_dataloader.dataset.img_dir=images/100k/train \
#       train_dataloader.dataset.img_shape=None val_dataloader.dataset.img_shape=None
#
# Real BDD100K: unpack the 100K images and the det_20 labels into
# data/bdd100k/ and run
#   `perception train configs/detection/tal_vit-tiny-p16_simplefpn_24e_bdd100k.py` as it is.
_base_ = [
    '../_base_/models/det_vit-tiny-p16_simplefpn.py',
    '../_base_/datasets/bdd100k_detection.py',
    '../_base_/schedules/finetune_detection.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(img_size=(384, 640)))
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(640, 384), keep_ratio=True),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
