# 2.5D lesion detector with a ConvNeXt-Atto (V2) backbone from scratch:
# 3 adjacent slices, each through two windows (lung and mediastinum: 6
# channels, slice-major), stages at strides 4/8/16/32 -> FPN (a stride-4
# level for 3-6 mm nodules) -> TAL head. Data and commands as in
# tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py; 4000
# iterations of batch 8 (about 0.8 s each on 2 CPU cores: the 60-minute
# budget) instead of 2000. docs/benchmarks.md: CPM 0.43, 0.62 on nodules
# >= 6 mm, on 12 unseen generated patients.
_base_ = ['./tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py']

model = dict(
    data_preprocessor=dict(
        windows=[(-600, 1500), (40, 400)],
        channel_meaning=[f'slice{o:+d}/{w}' for o in (-1, 0, 1)
                         for w in ('lung', 'mediastinum')],
        mean=[0.5] * 6,
        std=[0.25] * 6),
    backbone=dict(_delete_=True, type='ConvNeXt', arch='atto', version=2,
                  in_chans=6, out_indices=(0, 1, 2, 3), drop_path_rate=0.1),
    neck=dict(_delete_=True, type='FPN', in_channels=[40, 80, 160, 320],
              out_channels=96, in_indices=(0, 1, 2, 3),
              in_strides=(4, 8, 16, 32)),
)

max_iters = 4000
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min_ratio=0.01),
]
