# Runtime defaults of every perception config (mmpretrain's habit).
default_scope = 'perception'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # `last_checkpoint` in the work dir names the newest checkpoint;
    # `perception test CONFIG WORK_DIR` evaluates it.
    checkpoint=dict(type='CheckpointHook', interval=1, save_last=True,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # Without a GPU, `--launcher pytorch` uses gloo whatever this says.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(window_size=10)
log_level = 'INFO'

load_from = None
resume = False

randomness = dict(seed=0, deterministic=False)

# Mixed precision: 'auto' = bf16 autocast where the hardware computes bf16
# natively (CPUs with avx512_bf16 / AMX, GPUs of compute 8.0+), fp32
# elsewhere; or 'bf16', 'fp16', 'off'. `perception train --amp MODE` overrides.
amp = 'auto'
# Compiled training step: set `compile = True` (or torch.compile options,
# e.g. dict(mode='max-autotune')) in a config, or `perception train
# --compile`; a failure falls back to eager and the log says why. (Not set
# here, so `--cfg-options compile.backend=eager` can make the dict.)
