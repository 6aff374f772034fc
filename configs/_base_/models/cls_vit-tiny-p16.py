# Image classification on the project's ViT-Tiny (patch 16, the MAE
# encoder): mean of the patch tokens -> MLP head. For a linear probe set
# backbone frozen_stages='all' and head=dict(type='LinearClsHead',
# in_channels=192, norm='BN') (MAE's recipe). The task config sets
# class_names.
model = dict(
    type='Classifier',
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
    ),
    backbone=dict(type='VisionTransformer', arch='tiny', img_size=(288, 512),
                  patch_size=16, in_chans=3, pos_embed_type='sincos',
                  drop_path_rate=0.1),
    head=dict(type='MLPClsHead', in_channels=192, hidden_channels=(256, ),
              dropout=0.1),
)
