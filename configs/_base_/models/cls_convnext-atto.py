# Image classification on the project's ConvNeXt-Atto (V2, the FCMAE
# encoder): mean of the last stage's map -> MLP head. For a linear probe set
# backbone frozen_stages='all' and head=dict(type='LinearClsHead',
# in_channels=320, norm='BN'). The task config sets class_names.
model = dict(
    type='Classifier',
    data_preprocessor=dict(
        type='PerceptionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
    ),
    backbone=dict(type='ConvNeXt', arch='atto', version=2, in_chans=3,
                  out_indices=(3, ), drop_path_rate=0.1),
    head=dict(type='MLPClsHead', in_channels=320, hidden_channels=(256, ),
              dropout=0.1),
)
