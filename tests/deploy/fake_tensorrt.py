"""A stand-in ``tensorrt`` module with the API shapes of TensorRT 10.x and
11.x, recording every call (``module.calls``). Its "engine" runs the
bundle's ONNX in ONNX Runtime, writing outputs into the buffers whose
addresses the runtime set, so the backend's tensor plumbing is exercised
on CPU. Not TensorRT: no kernels, no precision choices."""
from __future__ import annotations

import ctypes
import enum
import json
import types

import numpy as np


def make(version: str = '10.3.0', parse_errors: tuple = (),
         build_logs: tuple = (), dla_cores: int = 0) -> types.ModuleType:
    trt = types.ModuleType('tensorrt')
    trt.__version__ = version
    trt.calls = []
    major = int(version.split('.')[0])

    def record(name, *args):
        trt.calls.append((name, ) + args)

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        def __init__(self):
            pass

    ILogger.Severity = Severity
    trt.ILogger = ILogger
    if major >= 11:
        trt.NetworkDefinitionCreationFlag = enum.IntEnum(
            'NetworkDefinitionCreationFlag', {'STRONGLY_TYPED': 1})
        trt.BuilderFlag = enum.IntEnum('BuilderFlag', {'GPU_FALLBACK': 3})
    else:
        trt.NetworkDefinitionCreationFlag = enum.IntEnum(
            'NetworkDefinitionCreationFlag', {'EXPLICIT_BATCH': 0,
                                              'STRONGLY_TYPED': 1})
        trt.BuilderFlag = enum.IntEnum('BuilderFlag', {
            'FP16': 0, 'INT8': 1, 'GPU_FALLBACK': 3})
    trt.MemoryPoolType = enum.IntEnum('MemoryPoolType', {'WORKSPACE': 0})
    trt.DeviceType = enum.IntEnum('DeviceType', {'GPU': 0, 'DLA': 1})
    trt.DataType = enum.IntEnum('DataType', {
        'FLOAT': 0, 'HALF': 1, 'INT8': 2, 'INT32': 3, 'BOOL': 4, 'INT64': 8})

    class Network:
        def __init__(self, flags):
            self.flags, self.onnx = flags, None

    class TimingCache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return b'cache:' + trt.__version__.encode()

    class Config:
        def __init__(self):
            self.flags, self.pools, self.profiles = set(), {}, []
            self.default_device_type, self.DLA_core = trt.DeviceType.GPU, -1
            self.cache = None

        def set_flag(self, flag):
            record('set_flag', flag.name)
            self.flags.add(flag.name)

        def set_memory_pool_limit(self, pool, size):
            record('set_memory_pool_limit', pool.name, size)
            self.pools[pool.name] = size

        def add_optimization_profile(self, profile):
            record('add_optimization_profile', dict(profile.shapes))
            self.profiles.append(profile)

        def create_timing_cache(self, data):
            record('create_timing_cache', bytes(data))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            record('set_timing_cache', ignore_mismatch)
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, opt, high):
            self.shapes[name] = (list(low), list(opt), list(high))

    class Builder:
        def __init__(self, logger):
            self.logger, self.num_DLA_cores = logger, dla_cores

        def create_network(self, flags):
            record('create_network', flags)
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            record('build_serialized_network', sorted(config.flags),
                   config.default_device_type.name)
            for message in build_logs:
                self.logger.log(Severity.ERROR, message)
            return json.dumps(dict(onnx=network.onnx)).encode()

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.logger = network, logger
            self.num_errors = 0

        def parse_from_file(self, path):
            record('parse_from_file', path)
            self.network.onnx = path
            self.num_errors = len(parse_errors)
            return not parse_errors

        def get_error(self, i):
            return parse_errors[i]

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses = engine, {}, {}

        def set_input_shape(self, name, shape):
            record('set_input_shape', name, tuple(shape))
            self.shapes[name] = tuple(shape)
            return True

        def set_tensor_address(self, name, address):
            self.addresses[name] = address

        def _outputs(self):
            name = self.engine.session.get_inputs()[0].name
            shape = self.shapes[name]
            buffer = (ctypes.c_float * int(np.prod(shape))).from_address(
                self.addresses[name])
            array = np.frombuffer(buffer, np.float32).reshape(shape)
            return dict(zip(self.engine.outputs, self.engine.session.run(
                None, {name: array.copy()})))

        def get_tensor_shape(self, name):
            return self._outputs()[name].shape

        def execute_async_v3(self, stream):
            record('execute_async_v3', stream)
            for name, value in self._outputs().items():
                value = np.ascontiguousarray(value, np.float32)
                ctypes.memmove(self.addresses[name], value.ctypes.data,
                               value.nbytes)
            return True

    class Engine:
        def __init__(self, onnx_path):
            import onnxruntime as ort
            self.session = ort.InferenceSession(
                onnx_path, providers=['CPUExecutionProvider'])
            self.outputs = [o.name for o in self.session.get_outputs()]
            self.names = [self.session.get_inputs()[0].name] + self.outputs
            self.num_io_tensors = len(self.names)

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_dtype(self, name):
            return trt.DataType.FLOAT

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            record('deserialize_cuda_engine')
            return Engine(json.loads(bytes(data))['onnx'])

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt
