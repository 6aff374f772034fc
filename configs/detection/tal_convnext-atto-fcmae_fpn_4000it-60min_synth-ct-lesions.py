# The ConvNeXt-Atto two-window CT lesion detector of
# tal_convnext-atto_fpn_4000it-60min_synth-ct-lesions.py (the scratch row),
# its backbone initialised from FCMAE pretraining on the training patients'
# slabs (no labels; the same 6 channels: 3 slices x lung and mediastinum
# windows, so the stem loads as it is). Same data, schedule and 60-minute
# budget as the scratch row. Measured (docs/benchmarks.md, 6 Dec 2026): CPM
# 0.30 (0.44 on nodules >= 6 mm) on the 12 unseen patients, below scratch's
# 0.43 (0.62): at this budget the FCMAE start does not pay.
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception synth-ct data/ct_lesions/test --patients 12 --scanners 3 --seed 101
#   perception train configs/pretrain/fcmae_convnext-atto_1xb16-20min_synth-ct-lesions.py \
#       --work-dir work_dirs/ct_lesions/fcmae_pretrain
#   perception train configs/detection/tal_convnext-atto-fcmae_fpn_4000it-60min_synth-ct-lesions.py
#
# init_cfg takes that work dir (its last checkpoint), a checkpoint file or an
# `perception export-backbone` folder.
_base_ = ['./tal_convnext-atto_fpn_4000it-60min_synth-ct-lesions.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/ct_lesions/fcmae_pretrain')))
