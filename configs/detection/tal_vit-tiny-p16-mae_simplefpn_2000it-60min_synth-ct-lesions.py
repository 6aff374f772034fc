# The same 2.5D lesion detector and budget as
# tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py, its ViT-Tiny
# initialised from MAE pretraining on CT slices (no labels; lung window, one
# channel): the single-channel patch embedding is inflated to the 3 slice
# channels (repeated, divided by 3), so a slab of equal slices starts with
# the pretrained response. Pretrain on the training study's slices first:
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-20min_synth-ct-lesions.py \
#       --work-dir work_dirs/ct_lesions/mae_pretrain
#
# (the 400-epoch recipe, mae_vit-tiny-p16_1xb32-400e_ct-1ch.py, with
# --cfg-options train_dataloader.dataset.data_root=... for a longer run)
#
# init_cfg takes that work dir (its last checkpoint), a checkpoint file or an
# `perception export-backbone` folder.
_base_ = ['./tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py']

model = dict(backbone=dict(init_cfg=dict(
    type='Pretrained', checkpoint='work_dirs/ct_lesions/mae_pretrain')))
