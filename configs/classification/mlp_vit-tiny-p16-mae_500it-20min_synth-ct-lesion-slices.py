# The same slice classifier and budget as
# mlp_vit-tiny-p16_500it-20min_synth-ct-lesion-slices.py, the whole model
# fine-tuned from MAE pretraining on the training study's CT slices (no
# labels; lung window, one channel: the patch embedding is inflated to the
# 3 slice channels, as in
# configs/detection/tal_vit-tiny-p16-mae_simplefpn_2000it-60min_synth-ct-lesions.py).
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception synth-ct data/ct_lesions/test --patients 12 --scanners 3 --seed 101
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-20min_synth-ct-lesions.py \
#       --work-dir work_dirs/ct_lesions/mae_pretrain
#   NAME=mlp_vit-tiny-p16-mae_500it-20min_synth-ct-lesion-slices
#   perception train configs/classification/$NAME.py --amp
#   perception test configs/classification/$NAME.py work_dirs/$NAME \
#       --show-dir pictures/
#
# init_cfg takes that work dir (its last checkpoint), a checkpoint file or an
# `perception export-backbone` folder.
_base_ = ['./mlp_vit-tiny-p16_500it-20min_synth-ct-lesion-slices.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/ct_lesions/mae_pretrain')))
