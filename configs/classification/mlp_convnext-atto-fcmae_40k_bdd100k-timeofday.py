# The same model, data and schedule as mlp_convnext-atto_40k_bdd100k-timeofday.py,
# its ConvNeXt-Atto initialised from FCMAE pretraining on driving frames:
#
#   perception train configs/pretrain/fcmae_convnext-atto_1xb32-400e_driving-256x512.py
#
# init_cfg takes that work dir (its last checkpoint), a checkpoint file or an
# `perception export-backbone` folder; the log lists missing/unexpected keys.
_base_ = ['./mlp_convnext-atto_40k_bdd100k-timeofday.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained',
    checkpoint='work_dirs/fcmae_convnext-atto_1xb32-400e_driving-256x512')))
