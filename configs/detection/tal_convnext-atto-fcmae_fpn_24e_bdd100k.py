# The same detector as tal_convnext-atto_fpn_24e_bdd100k.py, its backbone initialised from
# FCMAE pretraining on unlabeled driving frames:
#
#   perception train configs/pretrain/fcmae_convnext-atto_1xb32-400e_driving-256x512.py
#   perception train configs/detection/tal_convnext-atto-fcmae_fpn_24e_bdd100k.py
#
# init_cfg takes the pretraining work dir (its last checkpoint), a
# checkpoint file or a `perception export-backbone` folder, with no
# conversion; the log lists missing and unexpected keys, and a backbone that
# gets no weight is an error.
_base_ = ['./tal_convnext-atto_fpn_24e_bdd100k.py']

model = dict(backbone=dict(init_cfg=dict(type='Pretrained',
                                         checkpoint='work_dirs/fcmae_convnext-atto_1xb32-400e_driving-256x512')))
