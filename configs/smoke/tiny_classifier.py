# Smoke config: a tiny timm classifier on generated shapes, on CPU.
#
#   perception synth-images data/smoke          # 3 classes x 32 PNGs
#   perception train configs/smoke/tiny_classifier.py
#   perception test configs/smoke/tiny_classifier.py \
#       work_dirs/tiny_classifier/epoch_3.pth   # or just the work dir
#   perception train configs/smoke/tiny_classifier.py --resume
#
# Checkpoints go to work_dirs/tiny_classifier/ (epoch_N.pth and
# `last_checkpoint` naming the newest), TensorBoard logs under its
# <timestamp>/vis_data/.
_base_ = [
    '../_base_/datasets/shapes_64.py',
    '../_base_/schedules/adamw_3e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='TimmClassifier',
    model_name='resnet10t',
    num_classes=3,
    in_chans=3,
    # data_preprocessor: the dataset base's (the Runner hands it over)
)
