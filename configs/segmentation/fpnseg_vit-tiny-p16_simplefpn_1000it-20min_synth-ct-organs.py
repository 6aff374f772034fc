# CT organ segmentation (background, body, lungs, liver, heart) of single
# slices of the generated lesion studies, ViT-Tiny from scratch, at most 1000
# iterations of batch 8 or 20 minutes: the scratch row of the CT
# segmentation study in docs/benchmarks.md (its pretrained twin:
# fpnseg_vit-tiny-p16-mae_simplefpn_1000it-20min_synth-ct-organs.py).
# Each slice goes through two windows (lung; mediastinum for liver and
# heart), one channel each; PretrainedCfg records them with the weights.
# Make the studies (with --organ-masks; _base_/datasets/synth_ct_organs.py),
# then:
#
#   NAME=fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-ct-organs
#   perception train configs/segmentation/$NAME.py --amp
#   perception test configs/segmentation/$NAME.py work_dirs/$NAME \
#       --show-dir pictures/
_base_ = [
    '../_base_/datasets/synth_ct_organs.py',
    '../_base_/schedules/finetune_20min.py',
]
model = dict(
    type='Segmentor',
    class_names=['background', 'body', 'lungs', 'liver', 'heart'],
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        windows=[(-600, 1500), (40, 400)],  # lung, mediastinum: HU -> [0, 1]
        channel_meaning=['lung', 'mediastinum'],
        mean=[0.5, 0.5],                    # on the windowed [0, 1] scale,
        std=[0.25, 0.25],                   # as the MAE CT pretraining
        pad_size_divisor=32,
    ),
    backbone=dict(type='VisionTransformer', arch='tiny', img_size=(256, 256),
                  patch_size=16, in_chans=2, pos_embed_type='sincos',
                  drop_path_rate=0.1),
    neck=dict(type='SimpleFPN', in_channels=192, out_channels=96,
              strides=(4, 8, 16, 32)),
    head=dict(type='FPNSegHead', in_channels=96, num_levels=4, channels=96,
              dropout=0.1),
)
