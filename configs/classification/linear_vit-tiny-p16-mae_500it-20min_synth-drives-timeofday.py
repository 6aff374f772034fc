# Linear probe of the MAE-pretrained ViT-Tiny (work_dirs/det_study/mae_pretrain)
# on time of day of generated drives' frames: the backbone frozen, a
# BatchNorm (no affine) and one linear layer trained (MAE's recipe), larger
# lr, no layer decay; same data and budget as
# mlp_vit-tiny-p16_500it-20min_synth-drives-timeofday.py.
_base_ = ['./mlp_vit-tiny-p16_500it-20min_synth-drives-timeofday.py']

model = dict(
    backbone=dict(frozen_stages='all', drop_path_rate=0.0, init_cfg=dict(
        type='Pretrained', checkpoint='work_dirs/det_study/mae_pretrain')),
    head=dict(_delete_=True, type='LinearClsHead', in_channels=192,
              norm='BN'))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.0))
