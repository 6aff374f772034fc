# BDD100K time of day (daytime, dawn/dusk, night), ConvNeXt-Atto + MLP head
# from scratch, 40k iterations of batch 32 at 512x288 (its FCMAE twin:
# mlp_convnext-atto-fcmae_40k_bdd100k-timeofday.py). Data layout:
# configs/_base_/datasets/bdd100k_scene.py.
#
#   NAME=mlp_convnext-atto_40k_bdd100k-timeofday
#   perception train configs/classification/$NAME.py --amp
#   perception test configs/classification/$NAME.py work_dirs/$NAME --show-dir pictures/
_base_ = [
    '../_base_/models/cls_convnext-atto.py',
    '../_base_/datasets/bdd100k_scene.py',
    '../_base_/schedules/finetune_40k.py',
]
model = dict(class_names=['daytime', 'dawn/dusk', 'night'])
