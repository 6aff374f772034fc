"""The Python calls behind the ``perception`` command (mmdet's ``apis``
habit): a notebook and the command line run the same code.

Example:
    >>> from perception import apis
    >>> apis.train('configs/smoke/tiny_classifier.py', work_dir='work_dirs/a')
    >>> metrics = apis.test('configs/smoke/tiny_classifier.py', 'work_dirs/a')

Errors the user can fix raise :class:`perception.errors.UserError`
subclasses with a message that says what and how.
"""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ['train', 'test', 'export', 'infer', 'demo']


def train(config: str, *, work_dir: str | None = None,
          resume: str | bool | None = None, cfg_options: Sequence[str] = (),
          launcher: str = 'none', amp: str | bool | None = None,
          compile: bool | None = None,
          trust_checkpoint: bool = False) -> Any:
    """Train ``config`` with mmengine's Runner.

    Args:
        config: an mmengine Python config file.
        work_dir: logs and checkpoints (default ``work_dirs/<config stem>``).
        resume: ``True``/``'auto'``: the latest checkpoint in ``work_dir``;
            a path: that checkpoint; ``None``: start afresh.
        cfg_options: ``KEY=VALUE`` overrides, e.g. ``train_cfg.max_epochs=2``.
        launcher: ``'none'`` or ``'pytorch'`` (under torchrun).
        amp: mixed precision: ``'auto'`` (bf16 where the CPU or GPU has it
            natively, else fp32), ``'bf16'`` (also ``True``), ``'fp16'``,
            ``'off'`` (also ``False``); None: the config's ``amp`` (default
            ``'auto'``).
        compile: compile the training step (eager fallback, logged);
            None: the config's ``compile``.
        trust_checkpoint: allow checkpoints that need full unpickling.

    Returns:
        The trained model (mmengine ``BaseModel``).
    """
    from perception.engine.launch import RunOptions, run
    options = RunOptions(work_dir=work_dir, cfg_options=tuple(cfg_options),
                         launcher=launcher, trust_checkpoint=trust_checkpoint,
                         resume='auto' if resume is True else resume or None,
                         amp=amp, compile=compile)
    return run(config, 'train', options, lambda runner: runner.train())


def test(config: str, checkpoint: str, *, work_dir: str | None = None,
         cfg_options: Sequence[str] = (), launcher: str = 'none',
         out: str | None = None, show_dir: str | None = None,
         trust_checkpoint: bool = False, backend: str = 'torch') -> dict:
    """Evaluate ``checkpoint`` (a file, or a work dir naming its latest) on
    the test split of ``config``.

    Args:
        out: also write every prediction as JSON to this file.
        show_dir: also write pictures of predictions to this folder (a
            relative path is inside the work dir).
        backend: ``'torch'`` (``checkpoint`` is a checkpoint) or
            ``'onnxruntime'`` (``checkpoint`` is a deploy bundle or .onnx:
            the config's evaluator on the exported model).
        Others as in :func:`train`.

    Returns:
        The metrics, e.g. ``{'accuracy/top1': 61.5}``.
    """
    from perception.engine.launch import RunOptions, run
    options = RunOptions(work_dir=work_dir, cfg_options=tuple(cfg_options),
                         launcher=launcher, trust_checkpoint=trust_checkpoint,
                         checkpoint=checkpoint, out=out, show_dir=show_dir,
                         backend=backend)

    def action(runner: Any) -> Any:
        if backend != 'torch':  # the exported model in the config's place
            from perception.deploy.evaluate import backend_model
            runner.model = backend_model(checkpoint, backend)
        return runner.test()
    return dict(run(config, 'test', options, action) or {})


def export(config: str, checkpoint: str, *, out: str | None = None,
           cfg_options: Sequence[str] = (), trust_checkpoint: bool = False,
           **options: Any) -> Any:
    """Export a detector, segmentor or classifier to a verified deploy
    bundle (``perception export``).

    Args:
        config: the config the checkpoint was trained with.
        checkpoint: a checkpoint file, or a work dir (its latest).
        out: the bundle folder (default ``work_dirs/<config stem>/deploy``).
        cfg_options: ``KEY=VALUE`` overrides of the config.
        trust_checkpoint: allow checkpoints that need full unpickling.
        **options: fields of :class:`perception.deploy.export.ExportOptions`
            (``opset``, ``target``, ``nms``, ``dynamic``, ``size``,
            ``atol_rel``, ``match_iou``, ``match_score``; segmentors
            ``argmax``, ``labels_dtype``, ``min_pixel_agreement``;
            classifiers ``cls_output``...).

    Returns:
        :class:`perception.deploy.export.ExportResult` (bundle folder,
        manifest and the verification reports).

    Raises:
        perception.deploy.export.ExportError: a failed verification gate.
    """
    import os

    from perception.deploy.dense import export_model
    from perception.deploy.export import ExportOptions
    from perception.engine.launch import default_work_dir
    from perception.fileio import trust_checkpoints
    known = {k: v for k, v in options.items() if v is not None}
    if out is None:
        out = os.path.join(default_work_dir(config), 'deploy')
    with trust_checkpoints(trust_checkpoint):
        return export_model(config, checkpoint, out, ExportOptions(**known),
                            cfg_options=cfg_options)


def infer(model: Any, source: str, *, out: str = 'work_dirs/infer',
          backend: str | None = None, score_thr: float | None = None,
          **options: Any) -> dict:
    """Detect objects in a source (``perception infer``).

    Args:
        model: a checkpoint or work dir (PyTorch), a deploy bundle folder or
            an ``.onnx`` file (ONNX Runtime).
        source: anything :func:`perception.sources.open_source` accepts.
        out: output folder (detections.json, pictures, annotated MP4s).
        backend: ``'onnxruntime'`` or ``'torch'`` (default from ``model``).
        score_thr: lowest score kept (default: the model's).
        **options: of :func:`perception.deploy.infer.infer` (``batch``,
            ``threads``, ``max_frames``, ``source_options``...).

    Returns:
        the run's summary (frames, detections, fps, files...).
    """
    from perception.deploy.infer import infer as run_infer
    return run_infer(model, source, out=out, backend=backend,
                     score_thr=score_thr, **options)


def demo(parts: Sequence[str] = ('all', ), *, work_dir: str = 'work_dirs/demo',
         fast: bool = False) -> dict:
    """The whole pipeline on generated data (``perception demo``): each
    registered demo part (driving, medical) pretrains, fine-tunes against
    scratch, exports and infers; report.md / report.html in ``work_dir``.

    Returns:
        dict(parts, report (paths of report.md, report.html, figures.json),
        summary (the printed lines), meta).
    """
    from perception.demo import run_demo
    return run_demo(parts, work_dir=work_dir, fast=fast)
