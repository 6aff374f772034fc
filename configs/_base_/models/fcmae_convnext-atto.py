# FCMAE (ConvNeXt V2, Woo et al. 2023) on the core ConvNeXt-Atto (V2: global
# response norm). Masks are 32x32-pixel patches (the backbone's stride),
# 60% hidden; one ConvNeXt block decodes.
model = dict(
    type='FCMAE',
    backbone=dict(type='ConvNeXt', arch='atto', version=2, in_chans=3),
    decoder=dict(embed_dim=256, depth=1),
    mask_ratio=0.6,
    norm_pix_loss=True,
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
    ),
)
