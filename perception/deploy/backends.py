"""Inference backends: one interface over an exported model in ONNX Runtime
and the PyTorch model of a checkpoint, so :mod:`perception.deploy.predictor`
(``perception infer``, ``perception benchmark latency``, ``perception test
--backend``) runs either the same way.

A backend takes the data preprocessor's output, a (B, C, H, W) float32
batch, and returns the graph's outputs: ``(boxes (B, N, 4) xyxy in input
pixels, scores (B, N, C))`` with NMS outside the model (``nms='none'``, what
:meth:`Detector.forward` gives in ``mode='tensor'``), or the padded NMS
outputs of a bundle exported with ``nms='onnx'``. It also says how its
input was made (:class:`~perception.data.PretrainedCfg`) and how its
outputs are post-processed (``postprocess``: ``nms``, ``score_thr``,
``nms_iou``, ``max_per_img``, ``pre_nms_top_k``).

Both are registered in ``BACKENDS`` (``onnxruntime``, ``torch``); the
TensorRT backend adds itself there too.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from perception.data.pretrained_cfg import PretrainedCfg
from perception.deploy.manifest import BundleError, load_bundle
from perception.errors import UserError
from perception.registry import BACKENDS

__all__ = ['Backend', 'OnnxRuntimeBackend', 'TorchBackend', 'BackendError',
           'DEFAULT_PRE_NMS_TOP_K']

#: candidates per image before NMS, as the head's test_cfg default.
DEFAULT_PRE_NMS_TOP_K = 1000


class BackendError(UserError, ValueError):
    """A model cannot run on the chosen backend (wrong kind of file,
    missing package, input the model does not take)."""


class Backend:
    """Runs a detector on preprocessed batches.

    Attributes:
        name: registry name (``onnxruntime``, ``torch``).
        pretrained_cfg: how inputs are made (resize, mean/std, CT windows).
        postprocess: ``nms`` ('none' | 'onnx'), ``score_thr``, ``nms_iou``,
            ``max_per_img``, ``pre_nms_top_k``.
        input_shape: (C, H, W) the model takes, ints where fixed, None for
            dynamic axes; ``static_batch`` the fixed batch size or None.
        source: what was loaded (path), for messages and reports.
        task: ``detection``, ``segmentation`` or ``classification``
            (:mod:`perception.deploy.tasks`: what the outputs are).
    """

    name = ''

    def __init__(self) -> None:
        self.task = 'detection'
        self.pretrained_cfg = PretrainedCfg()
        self.postprocess: dict = {}
        self.input_shape: tuple = (None, None, None)
        self.static_batch: int | None = None
        self.source = ''

    @property
    def class_names(self) -> list[str]:
        return list(self.pretrained_cfg.class_names)

    def run(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args: inputs (Tensor): (B, C, H, W) float32, the data
        preprocessor's output. Returns the model's outputs as tensors."""
        raise NotImplementedError

    def warmup(self, height: int, width: int, batch: int = 1,
               runs: int = 2) -> None:
        """Run a zero batch ``runs`` times (allocations, kernel choice)."""
        channels = self.input_shape[0] or self.pretrained_cfg.in_chans
        zeros = torch.zeros(self.static_batch or batch, channels, height,
                            width)
        for _ in range(runs):
            self.run(zeros)

    def describe(self) -> dict:
        """What a report says about this backend."""
        return dict(backend=self.name, model=os.path.basename(self.source))


@BACKENDS.register_module(name='onnxruntime')
class OnnxRuntimeBackend(Backend):
    """An exported bundle (folder or ``.onnx``) in an ONNX Runtime session.

    Args:
        model: a bundle folder or an ``.onnx`` file (see
            :func:`perception.deploy.manifest.load_bundle`).
        threads: intra-op threads (0: ONNX Runtime's default, one per
            physical core).
        providers: execution providers (default: CUDA if this onnxruntime
            has it and a GPU is present, then CPU).
        io_binding: bind inputs/outputs (saves copies on a GPU provider;
            default: on only when the first provider is not the CPU's).
        check_sha256: compare the model file with the manifest's sha256.
    """

    name = 'onnxruntime'

    def __init__(self, model: str, threads: int = 0,
                 providers: Sequence[str] | None = None,
                 io_binding: bool | None = None,
                 check_sha256: bool = True) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendError(
                'the onnxruntime backend needs onnxruntime: pip install '
                "'perception-toolkit[deploy]'") from None
        self.bundle = load_bundle(model, check_sha256=check_sha256)
        manifest = self.bundle.manifest
        self.source = self.bundle.onnx_path
        self.pretrained_cfg = self.bundle.pretrained_cfg
        self.task = manifest.task
        self.postprocess = dict(manifest.postprocess)
        if self.task == 'detection':
            self.postprocess.setdefault('pre_nms_top_k',
                                        DEFAULT_PRE_NMS_TOP_K)
        shape = list(manifest.input['shape'])
        self.static_batch = shape[0] if isinstance(shape[0], int) else None
        self.input_shape = tuple(d if isinstance(d, int) else None
                                 for d in shape[1:])
        self.input_name = manifest.input['name']
        self.output_names = list(manifest.outputs['names'])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = \
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ('CUDAExecutionProvider',)
                         if p in available and torch.cuda.is_available()]
            providers.append('CPUExecutionProvider')
        self.threads = int(threads)
        try:
            self.session = ort.InferenceSession(self.source, options,
                                                providers=list(providers))
        except Exception as exc:  # onnxruntime's Fail/InvalidGraph/...
            raise BundleError(
                f"'{self.source}': ONNX Runtime cannot load the model "
                f'({_first_line(exc)}); re-export it with `perception '
                'export`') from None
        self.providers = self.session.get_providers()
        self.io_binding = (self.providers[0] != 'CPUExecutionProvider'
                           if io_binding is None else bool(io_binding))
        self._check_classes()

    def _check_classes(self) -> None:
        """Scores have one column per class name of the manifest."""
        names = self.class_names
        axis = {'classification': -1, 'segmentation': 1}.get(self.task, -1)
        if not names or self.postprocess.get('output') == 'labels' or (
                self.task == 'detection' and self.postprocess.get('nms') != 'none'):
            return
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        scores = outputs.get(self.output_names[-1]) or []
        if scores and isinstance(scores[axis], int) and \
                scores[axis] != len(names):
            raise BundleError(
                f"'{self.source}': the model scores {scores[axis]} classes but "
                f'the manifest names {len(names)} ({", ".join(names)}) in '
                'pretrained_cfg.class_names; the manifest belongs to another '
                'model: re-export')

    def run(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        array = np.ascontiguousarray(inputs.detach().cpu().numpy(),
                                     np.float32)
        try:
            if self.io_binding:
                binding = self.session.io_binding()
                binding.bind_cpu_input(self.input_name, array)
                for name in self.output_names:
                    binding.bind_output(name)
                self.session.run_with_iobinding(binding)
                outputs = binding.copy_outputs_to_cpu()
            else:
                outputs = self.session.run(self.output_names,
                                           {self.input_name: array})
        except Exception as exc:  # InvalidArgument: shape/rank/type
            raise BackendError(
                f"'{self.source}': the model does not take an input of shape "
                f'{list(array.shape)} ({_first_line(exc)}); the manifest\'s '
                'pretrained_cfg does not match the model: re-export') from None
        return tuple(torch.from_numpy(np.asarray(o)) for o in outputs)

    def describe(self) -> dict:
        out = super().describe()
        out.update(providers=list(self.providers), threads=self.threads,
                   io_binding=self.io_binding,
                   exporter=dict(self.bundle.manifest.exporter))
        return out


@BACKENDS.register_module(name='torch')
class TorchBackend(Backend):
    """The PyTorch detector of a checkpoint (eager), for comparison and for
    running a model before it is exported.

    Args:
        model: a checkpoint (``.pth``) or a work dir (its latest); it must
            embed its resolved config (``meta['cfg']``, as mmengine's
            Runner saves) and ``meta['pretrained_cfg']`` (perception's
            runs add it). A built ``torch.nn.Module`` detector is taken as
            is (give ``pretrained_cfg`` then).
        threads: torch intra-op threads (0: leave as is).
        pretrained_cfg: for a module only.
        trust_checkpoint: allow checkpoints that need full unpickling.
    """

    name = 'torch'

    def __init__(self, model: Any, threads: int = 0,
                 pretrained_cfg: PretrainedCfg | None = None,
                 trust_checkpoint: bool = False) -> None:
        super().__init__()
        if threads:
            torch.set_num_threads(int(threads))
        self.threads = torch.get_num_threads()
        if isinstance(model, torch.nn.Module):
            self.model, self.source = model, type(model).__name__
            self.pretrained_cfg = pretrained_cfg or PretrainedCfg()
        else:
            self.model, self.pretrained_cfg, self.source = load_checkpoint_model(
                os.fspath(model), trust_checkpoint)
        self.model.eval()
        from perception.deploy.tasks import task_of_model
        self.task = task_of_model(self.model)
        head = getattr(self.model, 'head', None)
        test_cfg = dict(getattr(head, 'test_cfg', None) or {})
        self.postprocess = dict(nms='none', score_thr=0.05, nms_iou=0.6,
                                max_per_img=100,
                                pre_nms_top_k=DEFAULT_PRE_NMS_TOP_K)
        self.postprocess.update({k: v for k, v in test_cfg.items()
                                 if k in self.postprocess})
        if self.task != 'detection':  # mode='tensor' gives logits
            self.postprocess = dict(output='logits')
        self.input_shape = (self.pretrained_cfg.in_chans, None, None)

    @torch.no_grad()
    def run(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(inputs, mode='tensor')
        return (outputs, ) if isinstance(outputs, torch.Tensor) \
            else tuple(outputs)

    def describe(self) -> dict:
        out = super().describe()
        out.update(threads=self.threads, torch=torch.__version__)
        return out


def load_checkpoint_model(path: str, trust: bool = False
                          ) -> tuple[torch.nn.Module, PretrainedCfg, str]:
    """(model with the checkpoint's weights, its PretrainedCfg, the file)
    from a checkpoint that embeds its config (``meta['cfg']``)."""
    from mmengine.config import Config

    from perception.fileio import CheckpointError, load_checkpoint_file, resolve_checkpoint
    from perception.registry import MODELS
    file = resolve_checkpoint(path)
    if file.endswith('.onnx') or os.path.isdir(file):
        raise BackendError(f"'{path}' is an exported model; run it with "
                           '--backend onnxruntime')
    try:
        checkpoint = load_checkpoint_file(file, map_location='cpu',
                                          trust=trust or None)
    except (UserError, FileNotFoundError):
        raise
    except Exception as exc:  # a file torch cannot read at all
        raise CheckpointError(f"'{file}' is not a readable checkpoint "
                              f'({_first_line(exc)})') from None
    meta = checkpoint.get('meta') or {} if isinstance(checkpoint, dict) else {}
    if not meta.get('cfg'):
        raise CheckpointError(
            f"'{file}' embeds no config (meta['cfg']); use a checkpoint "
            'written by `perception train` (mmengine Runner)')
    if not meta.get('pretrained_cfg'):
        raise CheckpointError(
            f"'{file}' has no meta['pretrained_cfg'] (how its inputs are "
            'made); use a checkpoint written by `perception train`')
    cfg = Config.fromstring(meta['cfg'], file_format='.py')
    model = MODELS.build(cfg.model)
    state = checkpoint.get('state_dict', checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"'{file}': its weights do not fit the model its config builds "
            f'(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})')
    pretrained = PretrainedCfg.from_dict(meta['pretrained_cfg'])
    return model, pretrained, file


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
