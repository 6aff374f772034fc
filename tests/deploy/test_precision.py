"""Explicit FP16 and Q/DQ INT8 bundles run in ONNX Runtime and pass or fail
the accuracy gate as they should: FP16 passes at its default; INT8
calibrated on scenes passes and INT8 calibrated on black frames fails at
one threshold, with the figures (the bundle stays FP32); the Q/DQ graph
has zero points 0, per-channel weight scales and passes the TensorRT op
lint of both targets; precision.json names each node's precision.

The gate's ground truth is the FP32 model's own detections above 0.2 on
generated scenes (the tiny detector is untrained): AP(fp32) is then near
100 and any precision loss shows as a drop."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from deploy_helpers import make_bundle, pretrained_cfg, tiny_detector

from perception.deploy.fp16 import convert_fp16
from perception.deploy.manifest import Manifest, load_bundle
from perception.deploy.oplint import lint_model
from perception.deploy.precision import PrecisionError, apply_precision
from perception.deploy.predictor import load_predictor


def _scene(rng: np.random.Generator) -> np.ndarray:
    image = np.full((64, 96, 3), rng.integers(60, 200), np.uint8)
    for _ in range(4):
        x, y = rng.integers(0, 80), rng.integers(0, 50)
        w, h = rng.integers(8, 30), rng.integers(8, 30)
        image[y:y + h, x:x + w] = rng.integers(0, 255, 3)
    return image


def _bundle(tmp_path):
    model = tiny_detector(seed=3)
    out = make_bundle(tmp_path / 'b', model, pretrained_cfg(model))
    manifest = Manifest.read(str(out))
    manifest.input['export_size'] = [64, 96]
    manifest.write(str(out))
    return out


@pytest.fixture(scope='module')
def scenes():
    rng = np.random.default_rng(0)
    return [_scene(rng) for _ in range(24)]


def _labelled(bundle, images):
    predictor = load_predictor(str(bundle), 'onnxruntime')
    samples = []
    for image in images:
        pred = predictor.predict([image])[0].pred_instances
        keep = pred.scores.numpy() > 0.2
        samples.append(dict(image=image, gt_bboxes=pred.bboxes.numpy()[keep],
                            gt_labels=pred.labels.numpy()[keep]))
    assert sum(len(s['gt_labels']) for s in samples) > 15
    return samples


def test_fp16_bundle_passes_the_gate(tmp_path, scenes):
    bundle = _bundle(tmp_path)
    report = apply_precision(str(bundle), 'fp16', _labelled(bundle, scenes))
    assert report['passed'] and report['gate']['drop'] <= 1.0
    assert report['gate']['fp32']['AP'] > 0.9
    assert set(report['gate']['per_class']) == {'car', 'pedestrian'}
    loaded = load_bundle(str(bundle))  # sha256 of the new model.onnx
    assert loaded.manifest.precision == 'fp16'
    saved = json.loads((bundle / 'precision.json').read_text())
    nodes = saved['nodes']
    model = onnx.load(str(bundle / 'model.onnx'))
    convs = [n for n in model.graph.node if n.op_type == 'Conv']
    assert convs and all(nodes[n.name] == 'fp16' for n in convs)
    kept = [n.name for n in model.graph.node
            if n.op_type in ('LayerNormalization', 'Exp')]
    assert kept and all(nodes[n] == 'fp32' for n in kept)
    assert model.graph.input[0].type.tensor_type.elem_type == 1
    assert all(o.type.tensor_type.elem_type == 1 for o in model.graph.output)
    # the FP16 weights are in the graph, not a flag
    assert any(i.data_type == 10 for i in model.graph.initializer)
    assert (bundle / 'model_fp32.onnx').is_file()


def test_fp16_numerics_in_onnx_runtime(tmp_path):
    bundle = _bundle(tmp_path)
    model = onnx.load(str(bundle / 'model.onnx'))
    half, record = convert_fp16(model)
    onnx.checker.check_model(half, full_check=True)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 128)).astype(
        np.float32)
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=['CPUExecutionProvider'])
    got = ort.InferenceSession(half.SerializeToString(),
                               providers=['CPUExecutionProvider'])
    (b0, s0), (b1, s1) = ref.run(None, {'inputs': x}), got.run(
        None, {'inputs': x})
    assert b1.dtype == np.float32 and np.abs(b0 - b1).max() < 0.5
    assert 0 < np.abs(s0 - s1).max() < 5e-3  # it does compute in FP16
    assert record['counts']['fp16']['Conv'] == sum(
        n.op_type == 'Conv' for n in model.graph.node)


def test_int8_passes_and_a_black_calibration_fails(tmp_path, scenes):
    bundle = _bundle(tmp_path)
    labelled = _labelled(bundle, scenes[8:])
    calib = [dict(image=s, name=f'{i}.png') for i, s in enumerate(scenes[:8])]
    # an untrained detector's scores sit near its threshold, so INT8 moves
    # many across it (about 15 AP points here, 36 with black frames): the
    # gate is set between the two to show it tells them apart
    report = apply_precision(str(bundle), 'int8', labelled,
                             calib_samples=calib, max_drop=25.0)
    assert report['passed'], report['gate']['summary']
    assert report['gate']['drop'] < 25.0
    assert report['max_abs_zero_point'] == 0
    assert report['qdq_scales']['per-channel'] > 0
    model = onnx.load(str(bundle / 'model.onnx'))
    ops = {n.op_type for n in model.graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    for target in ('trt10.3', 'trt11'):
        lint = lint_model(model, target)
        assert lint['passed'], lint['summary']
    assert report['counts']['int8']['Conv'] > 10

    bad = _bundle(tmp_path / 'bad')
    black = [dict(image=np.zeros((64, 96, 3), np.uint8), name='black.png')] * 8
    with pytest.raises(PrecisionError, match=r'int8 gate FAILED: AP .* drop'):
        apply_precision(str(bad), 'int8', labelled, calib_samples=black,
                        max_drop=25.0)
    saved = json.loads((bad / 'precision.json').read_text())
    assert not saved['passed'] and saved['gate']['drop'] > 25.0
    assert saved['gate']['drop'] > report['gate']['drop'] + 10
    assert load_bundle(str(bad)).manifest.precision == 'fp32'
    assert (bad / 'model_int8.rejected.onnx').is_file()


@pytest.mark.slow
def test_int8_with_the_head_kept_in_fp16(tmp_path, scenes):
    from perception.deploy.int8 import head_nodes
    bundle = _bundle(tmp_path)
    head = set(head_nodes(onnx.load(str(bundle / 'model.onnx'))))
    labelled = _labelled(bundle, scenes[12:])
    calib = [dict(image=s, name=f'{i}.png') for i, s in enumerate(scenes[:4])]
    report = apply_precision(str(bundle), 'int8', labelled,
                             calib_samples=calib, keep_head='fp16',
                             max_drop=100.0)
    model = onnx.load(str(bundle / 'model.onnx'))
    convs = {n.name: report['nodes'][n.name] for n in model.graph.node
             if n.op_type == 'Conv'}
    assert {p for n, p in convs.items() if n in head} == {'fp16'}
    assert {p for n, p in convs.items() if n not in head} == {'int8'}
    assert report['keep_head'] == 'fp16'
    assert lint_model(model, 'trt11')['passed']
