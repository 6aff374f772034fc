# Drivable area (direct / alternative / background, BDD100K's masks) on
# generated drives, ViT-Tiny from scratch, at most 1000 iterations of batch
# 8 or 20 minutes: the scratch row of the segmentation study in
# docs/benchmarks.md (its pretrained twin:
# fpnseg_vit-tiny-p16-mae_simplefpn_1000it-20min_synth-drives-drivable.py).
# Make the drives (exact list in docs/benchmarks.md), then:
#
#   perception synth-drive data/seg/train_s1 --seed 1 --frames 100 \
#       --cameras 1 --formats bdd100k cityscapes   # ... train_s8, test_s101..103
#   NAME=fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-drives-drivable
#   perception train configs/segmentation/$NAME.py --amp
#   perception test configs/segmentation/$NAME.py work_dirs/$NAME \
#       --show-dir pictures/
_base_ = [
    '../_base_/models/seg_vit-tiny-p16_simplefpn.py',
    '../_base_/datasets/synth_drives_drivable.py',
    '../_base_/schedules/finetune_20min.py',
]
model = dict(class_names=['direct', 'alternative', 'background'])
