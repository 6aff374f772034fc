# The same segmentor and budget as
# fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-drives-drivable.py, its
# ViT-Tiny initialised from MAE pretraining on the training drives' frames
# (no labels): the pretrained row of the segmentation study. Pretrain first
# (the detection study's encoder serves all three tasks):
#
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-20min_synth-drives-256x512.py \
#       --amp --work-dir work_dirs/det_study/mae_pretrain
#
# init_cfg takes that work dir (its last checkpoint), a checkpoint file or an
# `perception export-backbone` folder; the log lists missing/unexpected keys.
_base_ = ['./fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-drives-drivable.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/det_study/mae_pretrain')))
