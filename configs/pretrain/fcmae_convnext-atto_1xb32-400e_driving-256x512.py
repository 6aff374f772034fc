# FCMAE (ConvNeXt V2) pretraining of ConvNeXt-Atto on driving camera frames,
# 256x512, for edge deployments that prefer ConvNets:
#
#   perception synth-drive data/driving
#   perception train configs/pretrain/fcmae_convnext-atto_1xb32-400e_driving-256x512.py
#
# The dataset type needs the driving plugin installed
# (pip install 'perception-toolkit[driving]'); this plugin does not import it.
_base_ = [
    '../_base_/models/fcmae_convnext-atto.py',
    '../_base_/datasets/driving_frames_256x512.py',
    '../_base_/schedules/mae_adamw_1xb32-400e.py',
    '../_base_/default_runtime.py',
]

model = dict(input_size=(256, 512))

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, save_last=True,
                    max_keep_ckpts=3))
custom_hooks = [dict(type='ReconstructionHook', interval=1000,
                     num_images=4)]
