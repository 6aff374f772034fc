# The same detector and budget as tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py,
# its ViT-Tiny initialised from MAE pretraining on the training drives' frames
# (no labels): the pretrained row of the detection study. Pretrain first:
#
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-20min_synth-drives-256x512.py \
#       --amp --work-dir work_dirs/det_study/mae_pretrain
#
# init_cfg takes that work dir (its last checkpoint), a checkpoint file or an
# `perception export-backbone` folder; the log lists missing/unexpected keys.
_base_ = ['./tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/det_study/mae_pretrain')))
