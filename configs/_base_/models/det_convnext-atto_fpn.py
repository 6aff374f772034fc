# One-stage detector: ConvNeXt-Atto (V2, the FCMAE encoder; stages at
# strides 8/16/32) -> FPN -> anchor-free TAL head. The unified driving
# taxonomy.
driving_classes = ['pedestrian', 'rider', 'car', 'truck', 'bus', 'train',
                   'motorcycle', 'bicycle', 'traffic light', 'traffic sign']
model = dict(
    type='Detector',
    class_names=driving_classes,
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        pad_size_divisor=32,
    ),
    backbone=dict(type='ConvNeXt', arch='atto', version=2, in_chans=3,
                  out_indices=(1, 2, 3), drop_path_rate=0.1),
    neck=dict(type='FPN', in_channels=[80, 160, 320], out_channels=96,
              in_strides=(8, 16, 32)),
    head=dict(type='TALDetHead', in_channels=96, feat_channels=96,
              strides=(8, 16, 32)),
)
