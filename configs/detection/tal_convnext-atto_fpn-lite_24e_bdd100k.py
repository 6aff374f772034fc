# ConvNeXt-Atto + FPN -> TAL head on BDD100K, 24 epochs, with the light
# neck and head of the small real-time detectors (YOLO11n, RTMDet-tiny) for
# CPU / edge latency:
#
# - FPN and head at 64 channels instead of 96;
# - the head's stacked convs depthwise-separable (3x3 depthwise + 1x1
#   pointwise, each with norm and SiLU) instead of full 3x3 convs;
# - BatchNorm in neck and head (one head per level, as YOLO's), which the
#   ONNX graph folds into the convs, instead of GroupNorm (an
#   InstanceNormalization between reshapes at every conv).
#
# What it trades: head + neck 0.9 + 3.4 GFLOPs -> about 0.45 + 0.2 at
# 384x640 (the backbone's 5.4 stay; the whole model about 9.7 -> 6.0);
# fewer head parameters and a thinner FPN, so expect a lower AP than the
# 96-channel model, mostly on small objects (traffic lights and signs).
# BatchNorm needs batches of several images (the 4 per GPU of the
# dataset config; bigger is better); at CPU batches of 1-2 use
# head.norm_cfg=dict(type='GN', num_groups=16), head.share_levels=True and
# neck.norm='GN', at some ONNX Runtime cost. Checkpoints of the 96-channel
# config do not load into this one.
#
# Data and commands: as configs/detection/tal_convnext-atto_fpn_24e_bdd100k.py.
_base_ = ['./tal_convnext-atto_fpn_24e_bdd100k.py']
model = dict(
    neck=dict(out_channels=64, norm='BN'),
    head=dict(in_channels=64, feat_channels=64, use_depthwise=True,
              share_levels=False, norm_cfg=dict(type='BN')),
)
