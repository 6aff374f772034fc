# MAE pretraining of ViT-Tiny on the slices of the generated lesion study's
# training patients (no labels), one channel through the lung window, for a
# 20-minute wall-clock budget: the pretraining half of the CT lesion study
# (its detector: configs/detection/tal_vit-tiny-p16-mae_simplefpn_2000it-60min_synth-ct-lesions.py).
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-20min_synth-ct-lesions.py \
#       --work-dir work_dirs/ct_lesions/mae_pretrain
_base_ = ['./mae_vit-tiny-p16_1xb32-400e_ct-1ch.py']

train_dataloader = dict(
    num_workers=1,
    dataset=dict(data_root='data/ct_lesions/train/dicom'))

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, save_last=True,
                    max_keep_ckpts=2))
custom_hooks = [dict(type='ReconstructionHook', interval=200, num_images=4),
                dict(type='TimeBudgetHook', minutes=20)]

# A schedule for the budget (1920 slices of 40 patients: 60 iterations an
# epoch): short warm-up, a larger lr than the 400-epoch recipe, cosine to 0.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=15),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=6,
         eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6)
