"""The medical part of ``perception demo`` (registered in the core's
``DEMOS``): generate CT studies with lesions, read one of pydicom's real CT
files through ``read_dicom``, de-identify the training study, FCMAE-pretrain
a ConvNeXt-V2 on its de-identified slabs (no labels), fine-tune the 2.5D
lesion detector from those weights and from scratch, compare FROC / CPM on
a held-out study (with the subgroup report by scanner), export to ONNX
and infer on a series: windowed slices with the findings drawn, findings
JSON and the DICOM SR."""
from __future__ import annotations

import json
import os
from pathlib import Path

from perception.demo.context import pretraining_verdict
from perception.registry import DEMOS

BUDGETS = {
    'fast': dict(size=64, slices=10, train_patients=3, test_patients=2,
                 arch=dict(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128)),
                 pretrain_epochs=1, finetune_iters=4, batch=2,
                 pretrain_minutes=2, finetune_minutes=2),
    'full': dict(size=96, slices=24, train_patients=8, test_patients=4,
                 arch='atto', pretrain_epochs=8, finetune_iters=400, batch=8,
                 pretrain_minutes=1.5, finetune_minutes=1.5),
}
#: CPM difference one seed of the demo can tell apart (the verdict's margin).
VERDICT_MARGIN = 0.05
#: lung and mediastinum windows (HU): every slice of the slab through both
WINDOWS = [(-600, 1500), (40, 400)]
#: 3 adjacent slices x 2 windows, slice-major (the CT lesion configs' order)
CHANNELS = [f'slice{o:+d}/{w}' for o in (-1, 0, 1)
            for w in ('lung', 'mediastinum')]
#: a reconstruction field of view that holds both lungs (the body's edge
#: is cut): lesions span more pixels of the demo's small slices
FOV_MM = 280.0
_META = ("('img_path', 'img_shape', 'ori_shape', 'scale_factor', "
         "'homography_matrix', 'flip', 'series_uid', 'slice_index', 'affine', "
         "'slice_offsets', 'sample_idx', 'scan_fields')")
_RUNTIME = """default_scope = 'perception'
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_level = 'WARNING'
randomness = dict(seed=0)
amp = 'off'
"""


def _convnext(b: dict, init: str | None = None) -> str:
    init_cfg = f", init_cfg=dict(type='Pretrained', checkpoint={init!r})" \
        if init else ''
    return (f"dict(type='ConvNeXt', arch={b['arch']!r}, version=2, "
            f"in_chans={len(CHANNELS)}{init_cfg})")


def _dims(b: dict) -> list[int]:
    """The backbone's stage widths (the FPN's inputs), from ConvNeXt's own
    arch table for a named arch."""
    from perception.models.backbones.convnext import CONVNEXT_ARCHS
    arch = CONVNEXT_ARCHS[b['arch']] if isinstance(b['arch'], str) else b['arch']
    return list(arch['dims'])


def _preprocessor() -> str:
    return (f"dict(type='PerceptionDataPreprocessor', windows={WINDOWS!r}, "
            f"channel_meaning={CHANNELS!r}, mean={[0.5] * len(CHANNELS)!r}, "
            f"std={[0.25] * len(CHANNELS)!r}, pad_size_divisor=32)")


def pretrain_config(b: dict, slices_root: str) -> str:
    """A flat FCMAE config on unlabeled slabs of 3 adjacent CT slices, each
    through the lung and the mediastinum window (the detector's input)."""
    return f"""# FCMAE pretraining on de-identified CT slabs (no labels): 3 slices x
# lung and mediastinum windows, the lesion detector's 6 channels.
model = dict(type='FCMAE', backbone={_convnext(b)},
             decoder=dict(embed_dim=128, depth=1), mask_ratio=0.6,
             norm_pix_loss=True, input_size=({b['size']}, {b['size']}),
             data_preprocessor={_preprocessor()})
train_dataloader = dict(
    batch_size={b['batch']}, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DicomSliceDataset', data_root={slices_root!r},
                 num_slices=3, slice_stride=1,
                 pipeline=[dict(type='RandomResizedCrop', size={b['size']},
                                crop_scale=(0.5, 1.0)),
                           dict(type='RandomFlip', prob=0.5),
                           dict(type='PackInputs')]))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
    type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={b['pretrain_epochs']})
default_hooks = dict(timer=dict(type='IterTimerHook'),
                     logger=dict(type='LoggerHook', interval=5),
                     param_scheduler=dict(type='ParamSchedulerHook'),
                     checkpoint=dict(type='CheckpointHook', interval=1000,
                                     save_last=True, max_keep_ckpts=1))
custom_hooks = [dict(type='TimeBudgetHook', minutes={b['pretrain_minutes']})]
""" + _RUNTIME


def detector_config(b: dict, train: str, test: str, index: str,
                    init: str | None) -> str:
    """A flat 2.5D lesion detector config (3 adjacent slices, each through
    the lung and the mediastinum window)."""
    s, iters = b['size'], b['finetune_iters']

    def data(root: str, split: str, pipe: str) -> str:
        return (f"dict(type='LesionDetectionDataset', data_root={root!r}, "
                f"series_dirs=['dicom'], ann_file='annotations.csv', "
                f"split={split!r}, val_fraction=0.34, split_seed=0, num_slices=3, "
                f"slice_stride=1, min_size_mm=3.0, index_file={index!r}, "
                f"test_mode={split != 'train'}, pipeline={pipe})")
    pack = f"dict(type='PackInputs', meta_keys={_META})"
    resize = f"dict(type='Resize', scale=({s}, {s}), keep_ratio=True)"
    train_pipe = f"[dict(type='RandomFlip', prob=0.5), {resize}, {pack}]"
    test_pipe = f'[{resize}, {pack}]'
    start = 'from FCMAE' if init else 'from scratch'
    return f"""# 2.5D lesion detector (ConvNeXt-V2 -> FPN -> TAL head), {start}.
model = dict(
    type='Detector', class_names=['lesion'],
    data_preprocessor={_preprocessor()},
    backbone={_convnext(b, init)},
    neck=dict(type='FPN', in_channels={_dims(b)}, out_channels=64,
              in_indices=(0, 1, 2, 3), in_strides=(4, 8, 16, 32)),
    head=dict(type='TALDetHead', in_channels=64, feat_channels=64,
              strides=(4, 8, 16, 32),
              test_cfg=dict(score_thr=0.05, nms_iou=0.5, max_per_img=10)))
train_dataloader = dict(batch_size={b['batch']}, num_workers=0,
                        persistent_workers=False,
                        sampler=dict(type='LesionBalancedSampler',
                                     positive_fraction=0.5),
                        dataset={data(train, 'train', train_pipe)})
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset={data(train, 'val', test_pipe)})
test_dataloader = dict(val_dataloader, dataset={data(test, 'all', test_pipe)})
val_evaluator = [dict(type='FROCMetric', ann_file={train + '/annotations.csv'!r})]
test_evaluator = [dict(type='FROCMetric', ann_file={test + '/annotations.csv'!r}),
                  dict(type='CocoMetric', classwise=False)]
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
    type='AdamW', lr=1e-3, weight_decay=0.05), clip_grad=dict(max_norm=10.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False,
                        begin=0, end=max(1, {iters} // 10))]
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
""" + _RUNTIME


def _test_with_records(config: str, work: str) -> tuple[dict, list[dict]]:
    """``perception test`` of the work dir's checkpoint: the metrics and
    the FROC metric's per-scan records (for the subgroup report)."""
    from perception.engine.launch import RunOptions, run
    options = RunOptions(work_dir=work, checkpoint=work)

    def action(runner):
        metrics = runner.test()
        froc = [m for m in runner.test_evaluator.metrics
                if type(m).__name__ == 'FROCMetric']
        return dict(metrics), list(froc[0].per_scan) if froc else []
    return run(config, 'test', options, action)


def _candidates(config: Path, work: Path, series: Path, out: Path) -> dict:
    """Every candidate of the series (min score 0) through the plugin's
    LesionFindings: findings JSON, pictures and the SR."""
    from perception.engine.config import load_config
    from perception.fileio import load_checkpoint_file, resolve_checkpoint
    from perception.registry import MODELS
    from perception.sources import open_source
    from perception_medical.lesions.postprocess import LesionFindings
    from perception_medical.lesions.predict import iter_predictions
    cfg = load_config(str(config))
    cfg.model.head.test_cfg.score_thr = 0.0
    model = MODELS.build(cfg.model)
    ckpt = load_checkpoint_file(resolve_checkpoint(str(work)), map_location='cpu')
    model.load_state_dict(ckpt['state_dict'])
    post = LesionFindings(out, ['lesion'], min_score=0.0, max_pictures=2)
    with open_source(str(series)) as source:
        frames = list(source)
    for frame, sample in iter_predictions(model, frames,
                                          cfg.test_dataloader.dataset.pipeline,
                                          (-1, 0, 1)):
        post.add(frame, sample)
    return post.close()


def real_ct_file() -> str | None:
    """pydicom's CT_small.dcm (its test files, listed directly: no network)."""
    try:
        import pydicom
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(pydicom.__file__), 'data',
                        'test_files', 'CT_small.dcm')
    return path if os.path.isfile(path) else None


def _window_png(hu, out: str) -> None:
    import cv2
    import numpy as np
    (level, width) = WINDOWS[0]  # lung
    lo, hi = level - width / 2, level + width / 2
    grey = (np.clip((hu - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    cv2.imwrite(out, cv2.resize(grey, None, fx=2, fy=2,
                                interpolation=cv2.INTER_NEAREST))


def _series_folders(dicom_dir: Path) -> list[Path]:
    return sorted({p.parent for p in dicom_dir.rglob('*.dcm')})


@DEMOS.register_module(name='medical')
class MedicalDemo:
    """Medical: de-identify, pretrain on slices, fine-tune, FROC, export, infer."""

    name = 'medical'
    title = 'Medical: CT series to lesion findings'
    steps = ('generate studies', 'real CT file', 'de-identify',
             'FCMAE pretraining', 'fine-tune (pretrained)',
             'fine-tune (scratch)', 'evaluate', 'export', 'infer',
             'candidates')

    def run(self, ctx) -> None:
        from perception import apis
        from perception.evaluation import subgroup_report
        from perception_medical import deidentify, read_dicom, write_ct_study
        from perception_medical.synth.scanners import catalogue
        b = BUDGETS['fast' if ctx.fast else 'full']
        root, configs = ctx.dir, ctx.dir / 'configs'
        configs.mkdir(exist_ok=True)
        data = root / 'data'
        with ctx.step('generate studies'):
            for name, seed, n in (('train', 21, b['train_patients']),
                                  ('test', 22, b['test_patients'])):
                write_ct_study(data / name, n_patients=n, size=b['size'],
                               n_slices=b['slices'], lesions_per_patient=3,
                               fov_mm=FOV_MM,
                               seed=seed, scanners=catalogue(2), noise_hu=6.0,
                               overwrite=True, quiet=True)
        train, test = str(data / 'train'), str(data / 'test')
        ctx.figure('patients_train', b['train_patients'], 'training patients')
        ctx.figure('patients_test', b['test_patients'], 'held-out patients')

        with ctx.step('real CT file'):
            real = real_ct_file()
            if real is not None:
                hu = read_dicom(real)
                _window_png(hu, str(root / 'real_ct_small.png'))
        if real is not None:
            ctx.figure('real_ct_hu_min', float(hu.min()), "pydicom's CT_small.dcm: lowest HU")
            ctx.figure('real_ct_hu_max', float(hu.max()), "pydicom's CT_small.dcm: highest HU")
            ctx.artifact(root / 'real_ct_small.png', "pydicom's real CT_small.dcm "
                         'through read_dicom, lung window')
        else:
            ctx.paragraph("pydicom's test files are not installed: the real "
                          'CT file was skipped.')

        with ctx.step('de-identify'):
            deid_dir = data / 'train_deid'
            if deid_dir.exists():
                import shutil
                shutil.rmtree(deid_dir)
            report = deidentify(data / 'train' / 'dicom', deid_dir,
                                report=root / 'deid_report.json', quiet=True)
        ctx.figure('deid_files', int(report['summary']['written']),
                   'files de-identified')
        ctx.artifact(root / 'deid_report.json', 'de-identification report')
        ctx.paragraph('Pretraining reads the de-identified copy of the training '
                      'study (no labels needed); fine-tuning reads the study '
                      'as generated, whose annotations.csv names its original '
                      'series UIDs (de-identification replaces them).')

        with ctx.step('FCMAE pretraining'):
            cfg = configs / 'fcmae_pretrain.py'
            cfg.write_text(pretrain_config(b, str(deid_dir)))
            apis.train(str(cfg), work_dir=str(root / 'fcmae_pretrain'))
        ctx.artifact(cfg, 'FCMAE pretraining config (CT slabs)')
        index = str(root / 'index' / 'lesions.json')
        runs = {}
        for key, init in (('pretrained', str(root / 'fcmae_pretrain')),
                          ('scratch', None)):
            with ctx.step(f'fine-tune ({key})'):
                cfg = configs / f'lesions_{key}.py'
                cfg.write_text(detector_config(b, train, test, index, init))
                apis.train(str(cfg), work_dir=str(root / f'det_{key}'))
                runs[key] = cfg
            ctx.artifact(cfg, f'lesion detector config ({key})')
        from perception.demo.context import trained_iterations
        done = {key: trained_iterations(str(root / f'det_{key}')) for key in runs}
        ctx.figure('pretrain_iters', trained_iterations(str(root / 'fcmae_pretrain')),
                   'FCMAE pretraining iterations done')
        for key in runs:
            ctx.figure(f'finetune_iters_{key}', done[key],
                       f'fine-tuning iterations done, {key}')
        with ctx.step('evaluate'):
            results = {key: _test_with_records(str(cfg), str(root / f'det_{key}'))
                       for key, cfg in runs.items()}
        metrics = {k: v[0] for k, v in results.items()}
        for key in ('pretrained', 'scratch'):
            m = metrics[key]
            ctx.figure(f'cpm_{key}', float(m['froc/cpm']), f'FROC CPM, held-out study, {key}')
            ctx.figure(f'sens1_{key}', float(m['froc/sens@1']),
                       f'sensitivity at 1 FP/scan, {key}')
        ctx.paragraph(
            f"After {done['pretrained']} / {done['scratch']} fine-tuning "
            f"iterations (of {b['finetune_iters']}, or {b['finetune_minutes']} "
            "minutes) on "
            f"{b['train_patients']} patients, CPM is "
            f"{metrics['pretrained']['froc/cpm']:.4f} from FCMAE pretraining and "
            f"{metrics['scratch']['froc/cpm']:.4f} from scratch: "
            + pretraining_verdict(
                metrics['pretrained']['froc/cpm'],
                metrics['scratch']['froc/cpm'], 'CPM', VERDICT_MARGIN,
                'too little pretraining and fine-tuning to tell; see the CT '
                'lesion study in docs/benchmarks.md for longer runs'))
        records = results['pretrained'][1]
        sub = subgroup_report(records, ['manufacturer', 'slice_thickness_band'],
                              'sensitivity', min_group_size=1, n_boot=200,
                              unit_key='series_uid')
        sub.write_json(str(root / 'subgroups.json'))
        (root / 'subgroups.txt').write_text(sub.table() + '\n')
        ctx.artifact(root / 'subgroups.txt', 'subgroup report: per-scan sensitivity '
                     'by scanner maker and slice thickness (pretrained detector)')
        ctx.artifact(root / 'subgroups.json', 'subgroup report (JSON)')
        ctx.paragraph('Subgroup report of the pretrained detector: sensitivity '
                      'per scan at the 1 FP/scan operating point, by scanner maker '
                      'and slice thickness (few scans: wide intervals).')
        ctx.block(sub.table())
        (root / 'metrics.json').write_text(json.dumps(metrics, indent=1, default=float))
        ctx.artifact(root / 'metrics.json', 'test metrics of both detectors')

        with ctx.step('export'):
            bundle = root / 'bundle'
            result = apis.export(str(runs['pretrained']), str(root / 'det_pretrained'),
                                 out=str(bundle), size=(b['size'], b['size']),
                                 batch_sizes=(1, ) if ctx.fast else (1, 2))
        ctx.figure('parity_passed', bool(result.parity.get('passed')),
                   'ONNX Runtime vs PyTorch parity passed')
        ctx.figure('oplint_errors', len(result.oplint.get('errors', [])),
                   'TensorRT op-lint errors')
        for name, caption in (('model.onnx', 'the exported lesion detector (ONNX)'),
                              ('parity.json', 'parity report (ORT vs PyTorch)'),
                              ('oplint.json', 'TensorRT op-lint report')):
            ctx.artifact(bundle / name, caption)

        with ctx.step('infer'):
            series = _series_folders(data / 'test' / 'dicom')[0]
            out = root / 'infer'
            summary = apis.infer(str(bundle), str(series), out=str(out),
                                 score_thr=0.05)
        ctx.figure('infer_slices', summary['frames'], 'slices inferred (ONNX Runtime)')
        findings = summary['postprocessors'].get('LesionFindings', {})
        ctx.figure('findings', findings.get('findings'), 'lesion findings in the series')
        ctx.artifact(out / 'detections.json', 'slice detections (JSON)')
        if not findings.get('findings'):
            ctx.paragraph(
                'The detector found no lesion above the findings threshold '
                '(score 0.3) in the series: the demo also writes every '
                'candidate (threshold 0) to infer/candidates, with its '
                'pictures and SR, to show the outputs; at this training '
                'budget they are not findings to trust.')
            with ctx.step('candidates'):
                _candidates(runs['pretrained'], root / 'det_pretrained', series,
                            out / 'candidates')
        for path in sorted(out.rglob('*')):
            if path.suffix == '.json' and path.parent.name == 'findings':
                ctx.artifact(path, 'lesion findings (centre LPS mm, diameter, '
                             f'score), {path.parent.parent.name}')
            elif path.name.endswith('_sr.dcm'):
                ctx.artifact(path, 'DICOM SR (TID 1500) of the findings')
        pictures = sorted(out.rglob('*finding*.png'))
        pictures += sorted((out / 'pictures').glob('*.jpg'))[:2]
        for path in pictures[:4]:
            ctx.artifact(path, 'windowed slice with its detections: '
                         f'{path.relative_to(out)}')
