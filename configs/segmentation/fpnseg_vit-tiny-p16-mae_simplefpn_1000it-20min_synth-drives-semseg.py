# The same segmentor and budget as
# fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-drives-semseg.py, its
# ViT-Tiny initialised from MAE pretraining on the training drives' frames
# (work_dirs/det_study/mae_pretrain, made as in
# fpnseg_vit-tiny-p16-mae_simplefpn_1000it-20min_synth-drives-drivable.py).
_base_ = ['./fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-drives-semseg.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/det_study/mae_pretrain')))
