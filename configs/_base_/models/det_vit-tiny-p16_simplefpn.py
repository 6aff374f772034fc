# One-stage detector: ViT-Tiny (patch 16, the MAE encoder) -> simple feature
# pyramid (ViTDet, strides 8/16/32) -> anchor-free TAL head (TOOD / YOLOv8
# assignment, quality focal + GIoU losses). The unified driving taxonomy.
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
    backbone=dict(type='VisionTransformer', arch='tiny', img_size=(288, 512),
                  patch_size=16, in_chans=3, pos_embed_type='sincos',
                  drop_path_rate=0.1),
    neck=dict(type='SimpleFPN', in_channels=192, out_channels=96,
              strides=(8, 16, 32)),
    head=dict(type='TALDetHead', in_channels=96, feat_channels=96,
              strides=(8, 16, 32)),
)
