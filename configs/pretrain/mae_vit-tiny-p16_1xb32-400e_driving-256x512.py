# MAE pretraining of ViT-Tiny (patch 16) on driving camera frames, 256x512
# (a 16x32 patch grid; sin-cos positions are built for it). Frames come from
# any source the driving plugin opens (video, image folder, ROS bag, rig):
#
#   perception synth-drive data/driving
#   perception train configs/pretrain/mae_vit-tiny-p16_1xb32-400e_driving-256x512.py
#
# Other sources: --cfg-options "train_dataloader.dataset.source=['a.mp4','b.bag']"
# The dataset type needs the driving plugin installed
# (pip install 'perception-toolkit[driving]'); this plugin does not import it.
_base_ = [
    '../_base_/models/mae_vit-tiny-p16.py',
    '../_base_/datasets/driving_frames_256x512.py',
    '../_base_/schedules/mae_adamw_1xb32-400e.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(img_size=(256, 512)))

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, save_last=True,
                    max_keep_ckpts=3))
custom_hooks = [dict(type='ReconstructionHook', interval=1000,
                     num_images=4)]
