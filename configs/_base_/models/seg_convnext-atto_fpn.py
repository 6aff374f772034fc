# Semantic segmentation: ConvNeXt-Atto (V2, the FCMAE encoder; stages at
# strides 4/8/16/32) -> FPN -> Semantic-FPN light decoder (FPNSegHead),
# cross-entropy with ignore index 255. The task config sets class_names.
model = dict(
    type='Segmentor',
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        pad_size_divisor=32,
    ),
    backbone=dict(type='ConvNeXt', arch='atto', version=2, in_chans=3,
                  out_indices=(0, 1, 2, 3), drop_path_rate=0.1),
    neck=dict(type='FPN', in_channels=[40, 80, 160, 320], out_channels=96,
              in_indices=(0, 1, 2, 3), in_strides=(4, 8, 16, 32)),
    head=dict(type='FPNSegHead', in_channels=96, num_levels=4, channels=96,
              dropout=0.1),
)
