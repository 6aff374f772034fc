# 2.5D lesion detector with a ConvNeXt-Atto (V2) backbone from scratch:
# 3 adjacent slices, each through two windows (lung and mediastinum: 6
# channels, slice-major), stages at strides 4/8/16/32 -> FPN (a stride-4
# level for 3-6 mm nodules) -> TAL head. Data, schedule and commands as in
# tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py.
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
