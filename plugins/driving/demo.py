"""The driving part of ``perception demo`` (registered in the core's
``DEMOS``): generate drives (MP4 + KITTI labels), MAE-pretrain a small
ViT on the training drive's frames (no labels), fine-tune the detector on
a fraction of the labels from the pretrained weights and from scratch,
compare AP on a held-out drive, export to ONNX (parity and op-lint
reports), run ``infer`` on the held-out video (annotated MP4) and make a
contact sheet of its frames."""
from __future__ import annotations

import json
from pathlib import Path

from perception.demo.context import pretraining_verdict
from perception.registry import DEMOS

#: sizes and budgets of the two variants (frames are W x H)
BUDGETS = {
    'fast': dict(size=(256, 128), train_frames=8, test_frames=6, depth=1,
                 pretrain_epochs=1, finetune_iters=6, batch=2, fraction=0.5,
                 pretrain_minutes=2, finetune_minutes=2),
    'full': dict(size=(384, 192), train_frames=80, test_frames=24, depth=4,
                 pretrain_epochs=12, finetune_iters=150, batch=4,
                 fraction=0.25, pretrain_minutes=2, finetune_minutes=1.5),
}

#: AP difference one seed of the demo can tell apart (the verdict's margin).
VERDICT_MARGIN = 0.01

CLASSES = ['pedestrian', 'rider', 'car', 'truck', 'bus', 'train',
           'motorcycle', 'bicycle', 'traffic light', 'traffic sign']
_PREPROCESS = ("dict(type='PerceptionDataPreprocessor', "
               "mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]"
               "{extra})")


def _backbone(b: dict, init: str | None) -> str:
    init_cfg = f", init_cfg=dict(type='Pretrained', checkpoint={init!r})" \
        if init else ''
    return (f"dict(type='VisionTransformer', arch='tiny', depth={b['depth']}, "
            f"img_size=({b['size'][1]}, {b['size'][0]}), patch_size=16, "
            f"in_chans=3, pos_embed_type='sincos'{init_cfg})")


def pretrain_config(b: dict, video: str, cache: str) -> str:
    """A flat MAE config on the frames of ``video``."""
    h, w = b['size'][1], b['size'][0]
    return f"""# MAE pretraining of a small ViT on a generated drive's frames (no labels).
default_scope = 'perception'
model = dict(type='MAE', backbone={_backbone(b, None)},
             decoder=dict(embed_dim=64, depth=1, num_heads=4, mlp_ratio=4.0),
             mask_ratio=0.75, norm_pix_loss=True,
             data_preprocessor={_PREPROCESS.format(extra='')})
train_dataloader = dict(
    batch_size={b['batch']}, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CameraFeedDataset', source=[{video!r}], stride=1,
                 cache_dir={cache!r}, pipeline=[
                     dict(type='RandomResizedCrop', size=({h}, {w}),
                          crop_scale=(0.5, 1.0)),
                     dict(type='RandomFlip', prob=0.5),
                     dict(type='PackInputs')]))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
    type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                        begin=0, end=5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={b['pretrain_epochs']})
default_hooks = dict(timer=dict(type='IterTimerHook'),
                     logger=dict(type='LoggerHook', interval=5),
                     param_scheduler=dict(type='ParamSchedulerHook'),
                     checkpoint=dict(type='CheckpointHook', interval=1000,
                                     save_last=True, max_keep_ckpts=1))
custom_hooks = [dict(type='TimeBudgetHook', minutes={b['pretrain_minutes']})]
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_level = 'WARNING'
randomness = dict(seed=0)
amp = 'off'
"""


def detector_config(b: dict, train: str, test: str, init: str | None) -> str:
    """A flat detection config: the KITTI training drive (a seeded fraction
    of its labels) and the held-out drive."""
    def data(root: str, test_mode: bool, pipeline: str) -> str:
        inner = (f"dict(type='KittiDataset', data_root={root + '/training/'!r}, "
                 f"class_map={root + '/class_map.yaml'!r}, test_mode={test_mode}, "
                 f"filters=dict(min_height=8), pipeline={pipeline})")
        if test_mode:
            return inner
        return (f"dict(type='LabelSubsetDataset', fraction={b['fraction']}, "
                f'seed=0, dataset={inner})')
    train_pipe = ("[dict(type='LoadImage'), dict(type='RandomFlip', prob=0.5), "
                  "dict(type='PackInputs')]")
    test_pipe = "[dict(type='LoadImage'), dict(type='PackInputs')]"
    iters = b['finetune_iters']
    start = 'from MAE' if init else 'from scratch'
    return f"""# ViT -> simple FPN -> TAL head on a generated drive, {start}.
default_scope = 'perception'
model = dict(type='Detector', class_names={CLASSES!r},
             data_preprocessor={_PREPROCESS.format(extra=', pad_size_divisor=32')},
             backbone={_backbone(b, init)},
             neck=dict(type='SimpleFPN', in_channels=192, out_channels=64,
                       strides=(8, 16, 32)),
             head=dict(type='TALDetHead', in_channels=64, feat_channels=64,
                       strides=(8, 16, 32)))
train_dataloader = dict(batch_size={b['batch']}, num_workers=0,
                        persistent_workers=False,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset={data(train, False, train_pipe)})
val_dataloader = dict(batch_size={b['batch']}, num_workers=0,
                      persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset={data(test, True, test_pipe)})
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
    type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False,
                        begin=0, end=max(1, {iters} // 10)),
                   dict(type='CosineAnnealingLR', by_epoch=False,
                        begin=max(1, {iters} // 10), end={iters},
                        eta_min_ratio=0.05)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters={iters},
                 val_interval={iters + 1})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(timer=dict(type='IterTimerHook'),
                     logger=dict(type='LoggerHook', interval=10),
                     param_scheduler=dict(type='ParamSchedulerHook'),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                     interval={iters}, save_last=True,
                                     max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='TimeBudgetHook', minutes={b['finetune_minutes']})]
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_level = 'WARNING'
randomness = dict(seed=0)
amp = 'off'
"""


def contact_sheet(video: str, out: str, n: int = 6, cols: int = 3) -> int:
    """A grid of ``n`` evenly spaced frames of ``video`` as a PNG; returns
    the number of frames the video has."""
    import cv2
    import numpy as np

    from perception.sources import open_source
    from perception.visualization.draw import image_grid
    with open_source(video) as source:
        frames = [f.image for f in source]
    picks = np.linspace(0, len(frames) - 1, min(n, len(frames))).round()
    panels = [frames[int(i)] for i in picks]
    rows = [panels[i:i + cols] for i in range(0, len(panels), cols)]
    cv2.imwrite(out, cv2.cvtColor(image_grid(rows), cv2.COLOR_RGB2BGR))
    return len(frames)


@DEMOS.register_module(name='driving')
class DrivingDemo:
    """Driving: pretrain on frames, fine-tune with few labels, export, infer."""

    name = 'driving'
    title = 'Driving: camera frames to road-object detections'
    steps = ('generate drives', 'MAE pretraining', 'fine-tune (pretrained)',
             'fine-tune (scratch)', 'evaluate', 'export', 'infer')

    def run(self, ctx) -> None:
        from perception import apis
        from perception_driving.synth import generate_drive
        b = BUDGETS['fast' if ctx.fast else 'full']
        root, configs = ctx.dir, ctx.dir / 'configs'
        configs.mkdir(exist_ok=True)
        with ctx.step('generate drives'):
            for name, seed, frames in (('train', 1, b['train_frames']),
                                       ('test', 101, b['test_frames'])):
                generate_drive(str(root / 'data' / name), seed=seed,
                               frames=frames, size=b['size'], cameras=1,
                               formats=('kitti', 'video'), overwrite=True,
                               quiet=True)
        train = str(root / 'data' / 'train' / 'kitti')
        test = str(root / 'data' / 'test' / 'kitti')
        video = str(root / 'data' / 'test' / 'video' / 'front.mp4')
        ctx.figure('frames_train', b['train_frames'], 'training drive frames')
        ctx.figure('label_fraction', b['fraction'],
                   'share of training frames whose labels fine-tuning uses')

        with ctx.step('MAE pretraining'):
            cfg = configs / 'mae_pretrain.py'
            cfg.write_text(pretrain_config(
                b, str(root / 'data' / 'train' / 'video' / 'front.mp4'),
                str(root / 'cache')))
            model = apis.train(str(cfg), work_dir=str(root / 'mae_pretrain'))
            del model
        ctx.artifact(cfg, 'MAE pretraining config')
        runs = {}
        for key, init in (('pretrained', str(root / 'mae_pretrain')),
                          ('scratch', None)):
            with ctx.step(f'fine-tune ({key})'):
                cfg = configs / f'detector_{key}.py'
                cfg.write_text(detector_config(b, train, test, init))
                apis.train(str(cfg), work_dir=str(root / f'det_{key}'))
                runs[key] = cfg
            ctx.artifact(cfg, f'detector config ({key})')
        from perception.demo.context import trained_iterations
        done = {key: trained_iterations(str(root / f'det_{key}')) for key in runs}
        ctx.figure('pretrain_iters', trained_iterations(str(root / 'mae_pretrain')),
                   'MAE pretraining iterations done')
        for key in runs:
            ctx.figure(f'finetune_iters_{key}', done[key],
                       f'fine-tuning iterations done, {key}')
        with ctx.step('evaluate'):
            ap = {key: apis.test(str(cfg), str(root / f'det_{key}'),
                                 work_dir=str(root / f'det_{key}'))
                  for key, cfg in runs.items()}
        for key in ('pretrained', 'scratch'):
            ctx.figure(f'ap_{key}', float(ap[key]['coco/AP']),
                       f'COCO AP, held-out drive, {key}')
            ctx.figure(f'ap50_{key}', float(ap[key]['coco/AP50']),
                       f'COCO AP50, held-out drive, {key}')
        ctx.paragraph(
            f"With {b['fraction']:.0%} of {b['train_frames']} labelled frames "
            f"and {done['pretrained']} / {done['scratch']} fine-tuning iterations "
            f"(of {b['finetune_iters']}, or {b['finetune_minutes']} minutes), "
            "the detector "
            f"from MAE pretraining reaches AP {ap['pretrained']['coco/AP']:.4f}"
            f" against {ap['scratch']['coco/AP']:.4f} from scratch: "
            + pretraining_verdict(
                ap['pretrained']['coco/AP'], ap['scratch']['coco/AP'], 'AP',
                VERDICT_MARGIN, 'too few pretraining steps on too few frames '
                'to learn useful features; the longer study in '
                'docs/benchmarks.md is the one to judge by'))

        with ctx.step('export'):
            bundle = root / 'bundle'
            result = apis.export(str(runs['pretrained']),
                                 str(root / 'det_pretrained'), out=str(bundle),
                                 dynamic='batch',
                                 size=(b['size'][1], b['size'][0]),
                                 batch_sizes=(1, ) if ctx.fast else (1, 2))
        worst = result.parity.get('worst', {}).get('boxes', {})
        ctx.figure('parity_passed', bool(result.parity.get('passed')),
                   'ONNX Runtime vs PyTorch parity passed')
        ctx.figure('parity_box_err', worst.get('max_abs_error'),
                   'ONNX Runtime vs PyTorch, largest box error', 'px')
        ctx.figure('oplint_errors', len(result.oplint.get('errors', [])),
                   'TensorRT op-lint errors')
        for name, caption in (('model.onnx', 'the exported detector (ONNX)'),
                              ('manifest.json', 'bundle manifest'),
                              ('parity.json', 'parity report (ORT vs PyTorch)'),
                              ('oplint.json', 'TensorRT op-lint report')):
            ctx.artifact(bundle / name, caption)

        with ctx.step('infer'):
            out = root / 'infer'
            summary = apis.infer(str(bundle), video, out=str(out))
        mp4s = [f for f in summary['files'] if f.endswith('.mp4')]
        ctx.figure('infer_frames', summary['frames'], 'frames inferred (ONNX Runtime)')
        ctx.figure('infer_detections', summary['detections'], 'detections written')
        ctx.artifact(out / 'detections.json', 'detections (COCO-style JSON)')
        for mp4 in mp4s:
            ctx.artifact(mp4, 'annotated video of the held-out drive')
            sheet = root / 'contact_sheet.png'
            n = contact_sheet(mp4, str(sheet))
            ctx.figure('mp4_frames', n, 'frames in the annotated MP4')
            ctx.artifact(sheet, 'contact sheet: frames of the annotated MP4')
        _write_json(root / 'ap.json', ap)
        ctx.artifact(root / 'ap.json', 'test metrics of both detectors')


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, default=float))
