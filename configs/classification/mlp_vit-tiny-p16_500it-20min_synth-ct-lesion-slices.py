# Slice-level "has lesion" on CT (lesion vs no lesion, 2.5D slabs of 3
# adjacent slices through the lung window), ViT-Tiny + MLP head from
# scratch, at most 500 iterations of batch 16 or 20 minutes. The data are
# the lesion detector's studies (configs/_base_/datasets/synth_ct_lesion_slices.py:
# patient-level split, slices with only sub-3-mm lesions left out); half of
# every training batch shows a lesion, so read the per-class accuracies
# (per_class/true_class/lesion = sensitivity, .../no lesion = specificity)
# beside accuracy/top1. Pretrained twin:
# mlp_vit-tiny-p16-mae_500it-20min_synth-ct-lesion-slices.py.
#
#   perception synth-ct data/ct_lesions/train --patients 40 --scanners 3 --seed 1
#   perception synth-ct data/ct_lesions/test --patients 12 --scanners 3 --seed 101
#   NAME=mlp_vit-tiny-p16_500it-20min_synth-ct-lesion-slices
#   perception train configs/classification/$NAME.py --amp
#   perception test configs/classification/$NAME.py work_dirs/$NAME \
#       --show-dir pictures/
#
# (the test writes the per-class report, with bootstrap intervals over
# scans, to work_dirs/$NAME/per_class.json)
_base_ = [
    '../_base_/models/cls_vit-tiny-p16.py',
    '../_base_/datasets/synth_ct_lesion_slices.py',
    '../_base_/schedules/finetune_500it-20min.py',
]
window = (-600, 1500)  # lung window, HU (as the lesion detector)
model = dict(
    class_names=['no lesion', 'lesion'],
    data_preprocessor=dict(
        windows=[window],                 # every slice through every window
        channel_meaning=['slice-1/lung', 'slice+0/lung', 'slice+1/lung'],
        mean=[0.5, 0.5, 0.5],             # on the windowed [0, 1] scale,
        std=[0.25, 0.25, 0.25],           # as the MAE CT pretraining
        pad_size_divisor=32,
    ),
    backbone=dict(img_size=(256, 256), in_chans=3),
)
