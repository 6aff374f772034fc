# The same organ segmentor and budget as
# fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-ct-organs.py, its
# ViT-Tiny initialised from MAE pretraining on the training study's CT
# slices (no labels; lung window, one channel): the single-channel patch
# embedding is inflated to the two window channels. Pretrain first (the
# lesion study's encoder: the same images, so one pretraining serves both):
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1 --organ-masks
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-20min_synth-ct-lesions.py \
#       --work-dir work_dirs/ct_lesions/mae_pretrain
#
# init_cfg takes that work dir (its last checkpoint), a checkpoint file or an
# `perception export-backbone` folder; the log lists missing/unexpected keys.
_base_ = ['./fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-ct-organs.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/ct_lesions/mae_pretrain')))
