# MAE pretraining of ViT-Tiny (patch 16) on 224x224 RGB images from a
# folder (ImageFolderDataset, unlabeled). Generate images there with:
#
#   perception synth-mim data/pretrain/mim --n-train 2000 --n-val 64
#
# (OUT/train and OUT/val; or point data_root at your own frames), then
#
#   perception train configs/pretrain/mae_vit-tiny_p16_224.py
#
# A run that fits 20 minutes on 2 CPU cores (15.5 min measured, held-out
# loss 0.59; docs/benchmarks.md):
#
#   perception train configs/pretrain/mae_vit-tiny_p16_224.py \
#       --cfg-options train_cfg.max_iters=800 train_cfg.val_interval=200 \
#       optim_wrapper.optimizer.lr=1.5e-3 param_scheduler.0.end=50 \
#       param_scheduler.1.begin=50 custom_hooks.0.interval=200 \
#       default_hooks.checkpoint.interval=400
#
# Validation reports the held-out masked-patch loss with normalized-pixel
# targets (mim/masked_patch_loss; predicting each patch's mean scores
# mim/mean_patch_loss, about 1.0). Reconstructions (original | masked |
# reconstruction | reconstruction pasted into the visible patches) go to
# work_dirs/<config>/reconstructions/ and TensorBoard.
_base_ = [
    '../_base_/models/mae_vit-tiny-p16.py',
    '../_base_/default_runtime.py',
]

data_root = 'data/pretrain/mim'
batch_size = 32

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='RandomResizedCrop', size=224, crop_scale=(0.2, 1.0),
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=data_root + '/train',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root=data_root + '/val',
                 pipeline=val_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MaskedPatchLoss')
test_evaluator = val_evaluator

# The MAE recipe: AdamW (0.9, 0.95), weight decay 0.05 except norms,
# biases, position embeddings and class/mask tokens; lr = 1.5e-4 x
# batch / 256; linear warm-up then cosine to zero.
# Gradient accumulation: optim_wrapper.accumulative_counts=N.
# Mixed precision: `perception train ... --amp` (bf16 autocast on CPU).
optim_wrapper = dict(
    type='OptimWrapper',
    # fused: one kernel updates every parameter (several times faster than
    # torch's per-parameter loop on CPU; docs/benchmarks.md)
    optimizer=dict(type='AdamW', lr=1.5e-4 * batch_size / 256,
                   betas=(0.9, 0.95), weight_decay=0.05, fused=True),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'mask_token': dict(decay_mult=0.0),
        }),
)
warmup_iters = 500
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=warmup_iters),
    # `end` defaults to train_cfg.max_iters: override max_iters alone
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters,
         eta_min=0.0),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000,
                 val_interval=1000)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000,
                    save_last=True, max_keep_ckpts=3),
)
custom_hooks = [dict(type='ReconstructionHook', interval=1000,
                     num_images=4)]
log_processor = dict(by_epoch=False, window_size=20)
