# Scene classification (time of day: daytime, dawn/dusk, night) of generated
# drives' frames, ViT-Tiny + MLP head from scratch, at most 500 iterations
# of batch 16 or 20 minutes: the scratch row of the classification study in
# docs/benchmarks.md (the pretrained rows:
# mlp_vit-tiny-p16-mae_... (fine-tuned) and linear_vit-tiny-p16-mae_...
# (linear probe)). The drives are the segmentation study's (exact list in
# docs/benchmarks.md), then:
#
#   NAME=mlp_vit-tiny-p16_500it-20min_synth-drives-timeofday
#   perception train configs/classification/$NAME.py --amp
#   perception test configs/classification/$NAME.py work_dirs/$NAME \
#       --show-dir pictures/
_base_ = [
    '../_base_/models/cls_vit-tiny-p16.py',
    '../_base_/datasets/synth_drives_scene.py',
    '../_base_/schedules/finetune_500it-20min.py',
]
model = dict(class_names=['daytime', 'dawn/dusk', 'night'])
