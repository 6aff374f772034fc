# MAE (He et al. 2021) with a ViT-Tiny encoder (patch 16, dim 192, depth 12,
# 3 heads, mlp ratio 4) and a light decoder (dim 128, depth 4, 4 heads).
# The encoder is the core VisionTransformer: its weights load into
# fine-tuning (init_cfg=dict(type='Pretrained', checkpoint=...)) and into
# timm (perception export-backbone) with no key conversion.
model = dict(
    type='MAE',
    backbone=dict(type='VisionTransformer', arch='tiny', img_size=224,
                  patch_size=16, in_chans=3, pos_embed_type='sincos'),
    decoder=dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
    mask_ratio=0.75,
    norm_pix_loss=True,
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
    ),
)
