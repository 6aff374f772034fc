# Semantic segmentation (17 classes: road, lane marking, sidewalk, terrain,
# building, pole, traffic light, traffic sign, vegetation, sky, person,
# rider, car, truck, bus, motorcycle, bicycle) of generated drives, ViT-Tiny
# from scratch, at most 1000 iterations of batch 8 or 20 minutes: the
# scratch row of the segmentation study in docs/benchmarks.md (its
# pretrained twin: fpnseg_vit-tiny-p16-mae_simplefpn_1000it-20min_synth-drives-semseg.py).
# Make the drives (exact list in docs/benchmarks.md), then:
#
#   NAME=fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-drives-semseg
#   perception train configs/segmentation/$NAME.py --amp
#   perception test configs/segmentation/$NAME.py work_dirs/$NAME \
#       --show-dir pictures/
_base_ = [
    '../_base_/models/seg_vit-tiny-p16_simplefpn.py',
    '../_base_/datasets/synth_drives_semseg.py',
    '../_base_/schedules/finetune_20min.py',
]
model = dict(class_names=[
    'road', 'lane marking', 'sidewalk', 'terrain', 'building', 'pole',
    'traffic light', 'traffic sign', 'vegetation', 'sky', 'person', 'rider',
    'car', 'truck', 'bus', 'motorcycle', 'bicycle'])
