# The same classifier and budget as
# mlp_vit-tiny-p16_500it-20min_synth-drives-weather.py, the whole model
# fine-tuned from MAE pretraining on the training drives' frames
# (work_dirs/det_study/mae_pretrain: see
# configs/segmentation/fpnseg_vit-tiny-p16-mae_simplefpn_1000it-20min_synth-drives-drivable.py).
_base_ = ['./mlp_vit-tiny-p16_500it-20min_synth-drives-weather.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/det_study/mae_pretrain')))
