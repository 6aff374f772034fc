# Semantic segmentation: ViT-Tiny (patch 16, the MAE encoder) -> simple
# feature pyramid (ViTDet, strides 4/8/16/32) -> Semantic-FPN light decoder
# (FPNSegHead), cross-entropy with ignore index 255. The task config sets
# class_names (its dataset's classes).
model = dict(
    type='Segmentor',
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
              strides=(4, 8, 16, 32)),
    head=dict(type='FPNSegHead', in_channels=96, num_levels=4, channels=96,
              dropout=0.1),
)
