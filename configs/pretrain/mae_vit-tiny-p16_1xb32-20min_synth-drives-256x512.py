# MAE pretraining of ViT-Tiny on the frames of eight generated drives (no
# labels used), for a 20-minute wall-clock budget: the pretraining half of
# the detection study in docs/benchmarks.md. Make the drives with
#
#   for s in 1 2 3 4 5 6 7 8; do perception synth-drive data/det/train_s$s \
#       --seed $s --frames 100 --cameras 1 --lighting ... --weather ... \
#       --formats kitti bdd100k; done      (the exact list: docs/benchmarks.md)
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-20min_synth-drives-256x512.py --amp
_base_ = ['./mae_vit-tiny-p16_1xb32-400e_driving-256x512.py']

train_dataloader = dict(
    num_workers=1,
    dataset=dict(source=[f'data/det/train_s{s}/images/front'
                         for s in range(1, 9)],
                 stride=1, cache=False, cache_dir=None))

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=5, save_last=True,
                    max_keep_ckpts=2))
custom_hooks = [dict(type='ReconstructionHook', interval=200, num_images=4),
                dict(type='TimeBudgetHook', minutes=20)]

# A schedule for the budget (about 6 epochs of 25 iterations on 2 cores with
# --amp): short warm-up, a larger lr than the 400-epoch recipe, cosine to 0.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=15),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=6,
         eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6)
