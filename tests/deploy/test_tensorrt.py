"""The TensorRT layer against a fake ``tensorrt`` module that records calls
(fake_tensorrt.py: TensorRT 10.x and 11.x API shapes), and against the
real one where it is importable with a CUDA GPU (skipped here, with the
reason): network and precision flags per version, profiles from the
manifest, workspace, DLA, logged errors fatal, the sidecar and its
mismatch refusal, timing cache keys, the runtime's named tensors giving
ONNX Runtime's predictions."""
from __future__ import annotations

import json

import fake_tensorrt
import numpy as np
import pytest
import torch
from deploy_helpers import make_bundle, pretrained_cfg, tiny_detector

from perception.deploy.manifest import Manifest
from perception.deploy.predictor import Predictor, load_predictor
from perception.deploy.tensorrt import TensorRTError, TensorRTMissing, import_tensorrt
from perception.deploy.tensorrt.builder import (
    BuildOptions,
    build_engine,
    default_workspace,
    profiles_for,
    timing_cache_path,
    trtexec_command,
)
from perception.deploy.tensorrt.runtime import TensorRTBackend
from perception.deploy.tensorrt.sidecar import EngineMismatch

ORIN = dict(tensorrt_version='10.3.0', gpu_name='Orin',
            compute_capability='8.7')
THOR = dict(tensorrt_version='11.4.1', gpu_name='NVIDIA Thor',
            compute_capability='11.0')


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    model = tiny_detector()
    out = make_bundle(tmp_path_factory.mktemp('trt') / 'b', model,
                      pretrained_cfg(model))
    manifest = Manifest.read(str(out))
    manifest.input['export_size'] = [64, 96]
    manifest.write(str(out))
    return out


def _opts(tmp_path, **kw):
    return BuildOptions(timing_cache_dir=str(tmp_path / 'cache'), **kw)


def test_trt10_builds_strongly_typed_with_profiles_and_sidecar(bundle,
                                                                tmp_path):
    trt = fake_tensorrt.make('10.3.0')
    record = build_engine(str(bundle), _opts(tmp_path, workspace_mb=512,
                                             max_batch=4), trt, ORIN)
    calls = {c[0]: c[1:] for c in trt.calls}
    assert calls['create_network'] == (1 << 1, )  # STRONGLY_TYPED only
    assert calls['set_memory_pool_limit'] == ('WORKSPACE', 512 << 20)
    assert calls['add_optimization_profile'][0]['inputs'] == (
        [1, 3, 32, 32], [1, 3, 64, 96], [4, 3, 64, 96])
    assert calls['build_serialized_network'] == ([], 'GPU')
    sidecar = json.loads((bundle / 'engine.json').read_text())
    assert sidecar == record
    assert sidecar['onnx_sha256'] == Manifest.read(str(bundle)).sha256
    for key in ('precision', 'profiles', 'tensorrt_version', 'gpu_name',
                'compute_capability'):
        assert key in sidecar
    assert sidecar['compute_capability'] == '8.7' and sidecar['strongly_typed']
    assert (bundle / 'model.engine').is_file()


def test_fp16_flag_on_10x_and_refused_on_11(bundle, tmp_path):
    trt10 = fake_tensorrt.make('10.3.0')
    build_engine(str(bundle), _opts(tmp_path, flag_precision='fp16'), trt10,
                 ORIN)
    calls = {c[0]: c[1:] for c in trt10.calls}
    assert calls['create_network'] == (0, )  # weakly typed
    assert calls['build_serialized_network'][0] == ['FP16']
    trt11 = fake_tensorrt.make('11.4.1')
    with pytest.raises(TensorRTError, match=r'11\.4\.1 builds strongly typed '
                       r'networks only.*export \.\.\. --fp16'):
        build_engine(str(bundle), _opts(tmp_path, flag_precision='fp16'),
                     trt11, THOR)
    build_engine(str(bundle), _opts(tmp_path), trt11, THOR)
    assert ('create_network', 1 << 1) in trt11.calls
    with pytest.raises(TensorRTError, match='not supported'):
        build_engine(str(bundle), _opts(tmp_path),
                     fake_tensorrt.make('8.5.2'), ORIN)


def test_logged_errors_are_fatal(bundle, tmp_path):
    trt = fake_tensorrt.make('10.3.0', build_logs=(
        'Myelin: out of shared memory for tactic',))
    with pytest.raises(TensorRTError, match='engine build logged errors: '
                       'Myelin: out of shared memory'):
        build_engine(str(bundle), _opts(tmp_path, out=str(tmp_path / 'x.engine')),
                     trt, ORIN)
    assert not (tmp_path / 'x.engine').exists()
    parse = fake_tensorrt.make('10.3.0', parse_errors=(
        'In node 12 (importResize): UNSUPPORTED_NODE: cubic',))
    with pytest.raises(TensorRTError, match="ONNX parser refused.*importResize"):
        build_engine(str(bundle), _opts(tmp_path), parse, ORIN)


def test_dla_with_gpu_fallback(bundle, tmp_path):
    trt = fake_tensorrt.make('10.3.0', dla_cores=2)
    build_engine(str(bundle), _opts(tmp_path, dla_core=1), trt, ORIN)
    calls = {c[0]: c[1:] for c in trt.calls}
    assert calls['set_flag'] == ('GPU_FALLBACK', )
    assert calls['build_serialized_network'][1] == 'DLA'
    with pytest.raises(TensorRTError, match='has 0 DLA core'):
        build_engine(str(bundle), _opts(tmp_path, dla_core=0),
                     fake_tensorrt.make('10.3.0'), ORIN)


def test_timing_cache_persists_and_is_keyed_by_device(bundle, tmp_path):
    first = fake_tensorrt.make('10.3.0')
    build_engine(str(bundle), _opts(tmp_path), first, ORIN)
    assert ('create_timing_cache', b'') in first.calls
    second = fake_tensorrt.make('10.3.0')
    build_engine(str(bundle), _opts(tmp_path), second, ORIN)
    assert ('create_timing_cache', b'cache:10.3.0') in second.calls
    keys = {timing_cache_path('c', ORIN), timing_cache_path('c', THOR),
            timing_cache_path('c', dict(ORIN, compute_capability='8.6')),
            timing_cache_path('c', dict(ORIN, tensorrt_version='10.3.1'))}
    assert len(keys) == 4
    assert timing_cache_path('c', ORIN).endswith('timing-trt10.3.0-sm87-orin.cache')


def test_runtime_refuses_a_mismatched_engine(bundle, tmp_path):
    trt = fake_tensorrt.make('10.3.0')
    build_engine(str(bundle), _opts(tmp_path), trt, ORIN)
    other = dict(ORIN, gpu_name='NVIDIA GeForce RTX 4090',
                 compute_capability='8.9')
    with pytest.raises(EngineMismatch) as info:
        TensorRTBackend(str(bundle), trt=trt, facts=other)
    text = str(info.value)
    assert "gpu_name 'Orin' (engine) vs 'NVIDIA GeForce RTX 4090'" in text
    assert "compute_capability '8.7' (engine) vs '8.9'" in text
    assert f'perception deploy build {bundle}' in text
    assert 'tensorrt_version' not in text


def test_runtime_gives_the_onnx_predictions(bundle, tmp_path):
    trt = fake_tensorrt.make('11.4.1')
    build_engine(str(bundle), _opts(tmp_path), trt, THOR)
    backend = TensorRTBackend(str(bundle), trt=trt, facts=THOR)
    frame = np.random.default_rng(0).integers(0, 255, (60, 90, 3), np.uint8)
    got = Predictor(backend).predict([frame])[0].pred_instances
    want = load_predictor(str(bundle), 'onnxruntime').predict(
        [frame])[0].pred_instances
    assert len(want.bboxes) > 0
    torch.testing.assert_close(got.bboxes, want.bboxes)
    torch.testing.assert_close(got.scores, want.scores)
    names = [c[1] for c in trt.calls if c[0] == 'set_input_shape']
    assert names == ['inputs'] and ('execute_async_v3', 0) in trt.calls
    assert backend.describe()['compute_capability'] == '11.0'


def test_profiles_and_workspace_defaults(bundle):
    manifest = Manifest.read(str(bundle))
    manifest.dynamic = 'batch'
    assert profiles_for(manifest, 2)['inputs'] == [
        [1, 3, 64, 96], [1, 3, 64, 96], [2, 3, 64, 96]]
    assert default_workspace(tegra=True, total=8 << 30) == 1 << 30
    assert default_workspace(tegra=True, total=1 << 30) == 256 << 20
    assert default_workspace(tegra=True, total=64 << 30) == 2 << 30
    assert default_workspace(tegra=False) == 4 << 30
    line = trtexec_command(str(bundle), BuildOptions(workspace_mb=1024))
    assert '--stronglyTyped' in line and '--minShapes=inputs:1x3x32x32' in line
    assert '--maxShapes=inputs:8x3x64x96' in line
    assert '--memPoolSize=workspace:1024M' in line


def test_missing_tensorrt_is_one_line():
    try:
        import tensorrt  # noqa: F401
        pytest.skip('tensorrt is importable here')
    except ImportError:
        pass
    with pytest.raises(TensorRTMissing, match='TensorRT is not installed '
                       r'here .*JetPack'):
        import_tensorrt()


def _real_trt():
    try:
        import tensorrt
    except ImportError as exc:
        pytest.skip(f'real TensorRT not importable here ({exc})')
    if not torch.cuda.is_available():
        pytest.skip('real TensorRT test needs a CUDA GPU; torch sees none')
    return tensorrt


@pytest.mark.gpu
def test_real_tensorrt_engine_matches_onnx_runtime(bundle, tmp_path):
    _real_trt()
    build_engine(str(bundle), _opts(tmp_path))
    backend = TensorRTBackend(str(bundle))
    frame = np.random.default_rng(0).integers(0, 255, (60, 90, 3), np.uint8)
    got = Predictor(backend).predict([frame])[0].pred_instances
    want = load_predictor(str(bundle), 'onnxruntime').predict(
        [frame])[0].pred_instances
    torch.testing.assert_close(got.scores, want.scores, atol=1e-2, rtol=1e-2)
