"""The ``tensorrt`` backend: a bundle's engine (``model.engine``, checked
against ``engine.json`` first) run with named tensors and
``execute_async_v3`` on torch CUDA buffers; the same predictions API as
the ONNX Runtime and torch backends (``perception infer --backend
tensorrt``, ``perception benchmark latency --backend tensorrt``)."""
from __future__ import annotations

import os
from typing import Any

import torch

from perception.deploy.backends import DEFAULT_PRE_NMS_TOP_K, Backend, BackendError
from perception.deploy.manifest import load_bundle
from perception.deploy.tensorrt import ENGINE_FILE, TensorRTError, compat, import_tensorrt
from perception.deploy.tensorrt.sidecar import check_sidecar, device_facts, read_sidecar
from perception.registry import BACKENDS

__all__ = ['TensorRTBackend', 'torch_dtype']


def torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    """The torch dtype of a TensorRT ``DataType``."""
    table = {'FLOAT': torch.float32, 'HALF': torch.float16,
             'INT32': torch.int32, 'INT64': torch.int64, 'INT8': torch.int8,
             'BOOL': torch.bool, 'UINT8': torch.uint8, 'BF16': torch.bfloat16}
    for name, value in table.items():
        if getattr(trt.DataType, name, object()) == dtype:
            return value
    raise TensorRTError(f'engine tensor type {dtype} has no torch dtype')


@BACKENDS.register_module(name='tensorrt')
class TensorRTBackend(Backend):
    """A bundle folder holding ``model.engine`` + ``engine.json`` (made by
    ``perception export --format tensorrt`` or ``perception deploy
    build``).

    Args:
        model: the bundle folder.
        threads: ignored (the GPU runs it).
        device: CUDA device index.
        trt: the ``tensorrt`` module (tests pass a fake).
        facts: this device's facts (default measured).
    """

    name = 'tensorrt'

    def __init__(self, model: str, threads: int = 0, device: int = 0,
                 trt: Any = None, facts: dict | None = None,
                 check_sha256: bool = True) -> None:
        super().__init__()
        folder = os.fspath(model)
        if not os.path.isdir(folder):
            raise BackendError(f"'{folder}': the tensorrt backend takes a "
                               'bundle folder with model.engine (perception '
                               'export --format tensorrt --out DIR)')
        trt = trt or import_tensorrt()
        if facts is None and not torch.cuda.is_available():
            raise BackendError('the tensorrt backend needs a CUDA GPU; torch '
                               'sees none here (torch.cuda.is_available() is '
                               'False)')
        self.trt = trt
        self.bundle = load_bundle(folder, check_sha256=check_sha256)
        manifest = self.bundle.manifest
        engine_path = os.path.join(folder, ENGINE_FILE)
        if not os.path.isfile(engine_path):
            from perception.deploy.tensorrt.sidecar import rebuild_command
            raise BackendError(f"'{engine_path}' not found; build it here: "
                               f'{rebuild_command(folder)}')
        sidecar = read_sidecar(folder)
        current = dict(facts if facts is not None else device_facts(trt),
                       onnx_sha256=manifest.sha256)
        check_sidecar(sidecar, current, folder)
        self.sidecar, self.source = sidecar, engine_path
        self.pretrained_cfg = self.bundle.pretrained_cfg
        self.postprocess = dict(manifest.postprocess)
        self.postprocess.setdefault('pre_nms_top_k', DEFAULT_PRE_NMS_TOP_K)
        shape = list(manifest.input['shape'])
        self.static_batch = shape[0] if isinstance(shape[0], int) else None
        self.input_shape = tuple(d if isinstance(d, int) else None
                                 for d in shape[1:])
        self.input_name = manifest.input['name']
        self.output_names = list(manifest.outputs['names'])
        self.device = torch.device('cuda', device) if facts is None else \
            torch.device('cpu')
        self.logger = compat.make_logger(trt)
        runtime = trt.Runtime(self.logger)
        with open(engine_path, 'rb') as f:
            self.engine = runtime.deserialize_cuda_engine(f.read())
        compat.fatal_errors(self.logger, 'engine deserialization')
        if self.engine is None:
            raise TensorRTError(f"'{engine_path}' did not deserialize; "
                                f"rebuild: {sidecar.get('rebuild')}")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i)
                 for i in range(self.engine.num_io_tensors)]
        missing = [n for n in [self.input_name] + self.output_names
                   if n not in names]
        if missing:
            raise TensorRTError(f"'{engine_path}' has no tensors {missing} "
                                f'(it has {names}); rebuild: '
                                f"{sidecar.get('rebuild')}")

    def run(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        engine, context = self.engine, self.context
        dtype = torch_dtype(self.trt, engine.get_tensor_dtype(self.input_name))
        batch = inputs.to(self.device, dtype).contiguous()
        if not context.set_input_shape(self.input_name, tuple(batch.shape)):
            raise BackendError(
                f"'{self.source}': the engine's profile does not take an "
                f'input of shape {list(batch.shape)} (profiles: '
                f"{self.sidecar.get('profiles')}); rebuild with a larger "
                '--max-batch or feed the exported size')
        context.set_tensor_address(self.input_name, batch.data_ptr())
        outputs = []
        for name in self.output_names:
            shape = tuple(context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=torch_dtype(
                self.trt, engine.get_tensor_dtype(name)), device=self.device)
            context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        stream = torch.cuda.current_stream(self.device) \
            if self.device.type == 'cuda' else None
        ok = context.execute_async_v3(stream.cuda_stream if stream else 0)
        if stream is not None:
            stream.synchronize()
        compat.fatal_errors(self.logger, 'inference')
        if not ok:
            raise TensorRTError(f"'{self.source}': execute_async_v3 failed")
        return tuple(o.float().cpu() if o.is_floating_point() else o.cpu()
                     for o in outputs)

    def describe(self) -> dict:
        out = super().describe()
        out.update({k: self.sidecar.get(k) for k in (
            'tensorrt_version', 'gpu_name', 'compute_capability', 'precision',
            'strongly_typed', 'dla_core')})
        return out
