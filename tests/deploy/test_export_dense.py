"""`perception export` of a segmentor and a classifier (configs of
configs/segmentation and configs/classification shrunk to a tiny width and
a 128x64 input, untrained weights): verified bundles (checker, parity
against a fresh ONNX Runtime session, pixel / top-1 agreement, op lint),
the in-graph class map as int64 and uint8, a broken graph failing the
gate, and the bundle's predictions through the Predictor equal to the
PyTorch model's in source pixels."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from perception import apis
from perception.cli import main
from perception.deploy.errors import ExportError
from perception.deploy.manifest import load_bundle

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip('onnxruntime')
SEG = REPO / 'configs/segmentation/fpnseg_convnext-atto_fpn_40k_cityscapes.py'
CLS = REPO / 'configs/classification/mlp_convnext-atto_40k_bdd100k-timeofday.py'
#: a patient name in a data path: no bundle file may hold it
PHI = 'DOE_JANE_19700101'
TINY = '''dict(_delete_=True, type='ConvNeXt', in_chans=3,
    arch=dict(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48)),
    out_indices={indices})'''


def tiny_config(tmp: Path, task: str, data: str = '') -> Path:
    """The segmentation or classification config with a tiny ConvNeXt and
    a 128x64 test input (``data``: more config text, e.g. datasets)."""
    if task == 'segmentation':
        body = f'''_base_ = ['{SEG}']
model = dict(backbone={TINY.format(indices=(0, 1, 2, 3))},
             neck=dict(in_channels=[16, 24, 32, 48], out_channels=16),
             head=dict(in_channels=16, channels=16))
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImage'), dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='PackInputs')]))
'''
    else:
        body = f'''_base_ = ['{CLS}']
model = dict(backbone={TINY.format(indices=(3, ))},
             head=dict(in_channels=48, hidden_channels=(32, )))
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImage'), dict(type='Resize', scale=(128, 64)),
    dict(type='PackInputs')]))
'''
    path = tmp / f'tiny_{task}.py'
    path.write_text(body + data)
    return path


def build(config: Path) -> torch.nn.Module:
    """The config's model with weights spread (untrained heads give
    near-constant logits: arg-max agreement would be trivial)."""
    from perception.engine.config import load_config
    from perception.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(load_config(str(config)).model.to_dict())
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model.eval()


def checkpoint(tmp: Path, config: Path) -> tuple[Path, torch.nn.Module]:
    model = build(config)
    meta = {'cfg': f"test_dataloader = dict(dataset=dict(data_root='/data/{PHI}'))"}
    path = tmp / f'{config.stem}.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return path, model


def fresh_session(bundle: Path) -> tuple[dict, dict]:
    """(reference outputs, a new ONNX Runtime session's outputs on the
    reference inputs)."""
    import onnxruntime as ort
    loaded = load_bundle(str(bundle))
    inputs, outputs = loaded.reference()
    session = ort.InferenceSession(loaded.onnx_path,
                                   providers=['CPUExecutionProvider'])
    got = dict(zip(loaded.manifest.outputs['names'],
                   session.run(None, inputs)))
    return outputs, got


def reports(out: Path) -> tuple[dict, dict]:
    parity = json.loads((out / 'parity.json').read_text())
    lint = json.loads((out / 'oplint.json').read_text())
    assert parity['checker']['passed'] and lint['passed'], lint['summary']
    for path in out.rglob('*'):
        if path.is_file():
            assert PHI.encode() not in path.read_bytes(), path
    return parity, lint


@pytest.fixture(scope='module', autouse=True)
def one_torch_thread():
    """One torch thread while these tiny models run: on a shared CPU two
    threads wait on each other (tens of times slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def seg(tmp_path_factory):
    """(config, checkpoint, model) of the tiny segmentor."""
    tmp = tmp_path_factory.mktemp('seg')
    config = tiny_config(tmp, 'segmentation')
    return (config, *checkpoint(tmp, config))


@pytest.fixture(scope='module')
def cls(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cls')
    config = tiny_config(tmp, 'classification')
    return (config, *checkpoint(tmp, config))


#: the default tests take the legacy exporter without onnxslim (seconds on
#: CPU); the dynamo path with onnxslim runs in the slow test at the end
FAST = dict(legacy=True, simplify=False)


@pytest.fixture(scope='module')
def seg_logits(tmp_path_factory, seg):
    """A logits bundle, dynamic batch, height and width (the CLI's path)."""
    out = tmp_path_factory.mktemp('seg_logits') / 'b'
    assert main(['export', str(seg[0]), str(seg[1]), '--out', str(out),
                 '--dynamic', 'batch,hw', '--legacy-exporter',
                 '--no-simplify']) == 0
    return out


@pytest.fixture(scope='module', params=['int64', 'uint8'])
def seg_map(request, tmp_path_factory, seg):
    """A bundle whose graph outputs the class map (``--argmax``)."""
    out = tmp_path_factory.mktemp(f'seg_{request.param}') / 'b'
    apis.export(str(seg[0]), str(seg[1]), out=str(out), argmax=True,
                labels_dtype=request.param, **FAST)
    return out


@pytest.fixture(scope='module', params=['scores', 'logits'])
def cls_bundle(request, tmp_path_factory, cls):
    out = tmp_path_factory.mktemp(f'cls_{request.param}') / 'b'
    apis.export(str(cls[0]), str(cls[1]), out=str(out),
                cls_output=request.param, **FAST)
    return out


def test_segmentor_exports_logits_at_two_sizes(seg, seg_logits):
    model, out = seg[2], seg_logits
    parity, lint = reports(out)
    manifest = load_bundle(str(out)).manifest
    assert manifest.task == 'segmentation'
    assert manifest.postprocess == {'output': 'logits'}
    assert manifest.outputs['names'] == ['logits']
    assert manifest.outputs['shapes']['logits'] == ['batch', 19, 'height',
                                                    'width']
    assert {(r['batch'], r['height'], r['width']) for r in parity['runs']} == {
        (1, 64, 128), (2, 64, 128), (1, 32, 64), (2, 32, 64)}
    assert parity['passed'] and parity['pixel_agreement'] >= 0.999
    want, got = fresh_session(out)
    scale = np.abs(want['logits']).max()
    assert np.abs(got['logits'] - want['logits']).max() <= 1e-3 * scale
    # the reference is the PyTorch model's own logits, not the graph's
    inputs, _ = load_bundle(str(out)).reference()
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs['inputs']), mode='tensor')
    assert np.abs(want['logits'] - logits.numpy()).max() < 1e-5
    # the untrained head does not predict one class everywhere
    assert len(np.unique(want['logits'].argmax(1))) > 1


def test_segmentor_exports_the_class_map_in_the_graph(seg, seg_map):
    model, out = seg[2], seg_map
    parity, lint = reports(out)
    manifest = load_bundle(str(out)).manifest
    dtype = manifest.postprocess['labels_dtype']
    assert manifest.postprocess == {'output': 'labels', 'labels_dtype': dtype}
    assert manifest.outputs['shapes']['labels'] == ['batch', 64, 128]
    assert lint['op_counts']['ArgMax'] == 1
    if dtype == 'uint8':  # ArgMax gives int64; the Cast after it
        assert lint['op_counts'].get('Cast', 0) >= 1
    want, got = fresh_session(out)
    assert got['labels'].dtype == np.dtype(dtype)
    inputs, _ = load_bundle(str(out)).reference()
    with torch.no_grad():
        labels = model(torch.from_numpy(inputs['inputs']),
                       mode='tensor').argmax(1).numpy()
    assert (got['labels'].astype(np.int64) == labels).mean() >= 0.999
    assert (want['labels'] == labels).all()
    assert all(r['labels_dtype'] == dtype for r in parity['runs'])


def test_classifier_exports_scores_or_logits(cls, cls_bundle):
    model, out = cls[2], cls_bundle
    parity, _ = reports(out)
    manifest = load_bundle(str(out)).manifest
    output = manifest.postprocess['output']
    assert manifest.task == 'classification'
    assert manifest.outputs['names'] == [output]
    assert manifest.outputs['shapes'][output] == ['batch', 3]
    # batches 1 and 2 and one of 8: every sample the same top-1
    assert parity['top1'] == dict(same=11, samples=11)
    want, got = fresh_session(out)
    inputs, _ = load_bundle(str(out)).reference()
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs['inputs']), mode='tensor')
    expected = logits.softmax(-1) if output == 'scores' else logits
    np.testing.assert_allclose(got[output], expected.numpy(), atol=1e-4)
    if output == 'scores':
        np.testing.assert_allclose(got[output].sum(-1), 1.0, atol=1e-5)


def test_a_broken_graph_fails_the_gate(tmp_path, seg, seg_logits):
    """The class scores' last layer negated in model.onnx: ONNX Runtime
    and PyTorch disagree, and the gate says by how much."""
    import shutil

    import onnx
    from onnx import numpy_helper

    from perception.deploy.dense import SegmentorGraph, check_gates
    from perception.deploy.export import ExportOptions
    from perception.deploy.verify import verify_bundle
    out = tmp_path / 'b'
    shutil.copytree(seg_logits, out)
    proto = onnx.load(str(out / 'model.onnx'))
    last = [t for t in proto.graph.initializer
            if tuple(t.dims)[:1] == (19, ) and len(t.dims) == 4]
    assert len(last) == 1
    last[0].CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(last[0]),
                                             last[0].name))
    onnx.save(proto, str(out / 'model.onnx'))
    options = ExportOptions(dynamic='batch,hw')
    manifest = load_bundle(str(out), check_sha256=False).manifest
    results = verify_bundle(str(out), SegmentorGraph(seg[2]), manifest,
                            options)
    assert not results['parity']['passed']
    assert results['parity']['pixel_agreement'] < 0.9
    written = json.loads((out / 'parity.json').read_text())
    assert written['passed'] is False
    with pytest.raises(ExportError, match=r"failed verification: parity "
                       r"FAILED .*logits max [\d.]+ .*\(tolerance [\d.]+\); "
                       r"arg-max pixel agreement 0(\.\d+)? \(at least "
                       r"0\.999\)"):
        check_gates(str(out), results, options)


def test_tolerances_are_options(tmp_path, seg):
    """--atol-rel 0 fails the logits' tolerance (one line, exit 2, the
    reports left); a lower --min-pixel-agreement is recorded."""
    out = tmp_path / 'b'
    with pytest.raises(ExportError, match=r'parity FAILED .*logits max .*'
                       r'\(tolerance 0\)'):
        apis.export(str(seg[0]), str(seg[1]), out=str(out), atol_rel=0.0,
                    min_pixel_agreement=0.5, **FAST)
    parity = json.loads((out / 'parity.json').read_text())
    assert parity['tolerances'] == dict(atol_rel=0.0, min_pixel_agreement=0.5)


def test_options_that_do_not_apply_are_refused(tmp_path, seg, cls):
    with pytest.raises(ExportError, match='--nms onnx: a segmentation model'):
        apis.export(str(seg[0]), str(seg[1]), out=str(tmp_path), nms='onnx')
    with pytest.raises(ExportError, match='--argmax.*classification'):
        apis.export(str(cls[0]), str(cls[1]), out=str(tmp_path), argmax=True)
    with pytest.raises(ExportError, match='--min-pixel-agreement 2'):
        apis.export(str(seg[0]), str(seg[1]), out=str(tmp_path),
                    min_pixel_agreement=2)


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), np.uint8)
            for h, w in ((100, 200), (90, 150))]


def _model_inputs(predictor, frames):
    prepared = [predictor.prepare(f) for f in frames]
    samples = [s for _, s in prepared]
    return predictor.collate([t for t, _ in prepared], samples), samples


def test_segmentation_bundles_predict_as_pytorch(seg, seg_logits, seg_map):
    """pred_sem_seg in source pixels: the logits bundle as the PyTorch
    model (the same bilinear map to the source, then arg-max); the class
    map by nearest neighbour, so class borders may move by a pixel."""
    from perception.deploy.predictor import load_predictor
    model, frames = seg[2], _frames()
    for bundle, agree in ((seg_logits, 0.999), (seg_map, 0.95)):
        shipped = load_predictor(str(bundle))
        inputs, samples = _model_inputs(shipped, frames)
        with torch.no_grad():
            direct = model(inputs, samples, mode='predict')
        for frame, a, b in zip(frames, direct, shipped.predict(frames)):
            a, b = a.pred_sem_seg.data, b.pred_sem_seg.data
            assert a.shape == b.shape == (1, *frame.shape[:2])
            assert b.dtype == torch.int64
            assert (a == b).float().mean() >= agree, bundle


def test_classification_bundle_predicts_as_pytorch(cls, cls_bundle):
    from perception.deploy.predictor import load_predictor
    model, frames = cls[2], _frames()
    shipped = load_predictor(str(cls_bundle))
    inputs, samples = _model_inputs(shipped, frames)
    with torch.no_grad():
        direct = model(inputs, samples, mode='predict')
    for a, b in zip(direct, shipped.predict(frames)):
        assert a.pred_label.tolist() == b.pred_label.tolist()
        torch.testing.assert_close(a.pred_score, b.pred_score, atol=1e-5,
                                   rtol=0)


def test_infer_on_an_image_folder_writes_label_pngs(tmp_path, seg,
                                                    seg_logits):
    """`perception infer` with a segmentation bundle: one label PNG per
    image in source pixels (equal to the predictor's pred_sem_seg), the
    class pixel counts in predictions.json, a picture per image."""
    from PIL import Image

    from perception.deploy.predictor import load_predictor
    folder = tmp_path / 'images'
    folder.mkdir()
    frames = _frames()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f'{i:06d}.png')
    out = tmp_path / 'out'
    summary = apis.infer(str(seg_logits), str(folder), out=str(out))
    assert summary['frames'] == 2 and summary['pictures'] == 2
    data = json.loads((out / 'predictions.json').read_text())
    expected = load_predictor(str(seg_logits)).predict(frames)
    for i, (frame, image, sample) in enumerate(zip(frames, data['images'],
                                                   expected)):
        assert image['file_name'] == f'{i:06d}.png'
        assert image['mask_file'] == f'masks/{i:06d}.png'
        mask = np.asarray(Image.open(out / image['mask_file']))
        assert mask.shape == frame.shape[:2] and mask.dtype == np.uint8
        want = sample.pred_sem_seg.data[0].numpy()
        assert (mask == want).mean() >= 0.999
        counts = np.bincount(mask.ravel())
        assert image['pixels'] == {str(k): int(n) for k, n in
                                   enumerate(counts) if n}
        with Image.open(out / 'pictures' / f'{i:06d}.jpg') as picture:
            assert picture.size == (frame.shape[1], frame.shape[0])
    assert len(data['categories']) == 19


@pytest.mark.slow
@pytest.mark.parametrize('task', ['segmentation', 'classification'])
def test_the_default_path_dynamo_and_onnxslim(tmp_path, seg, cls, task):
    config, ckpt, _ = seg if task == 'segmentation' else cls
    out = tmp_path / 'b'
    assert main(['export', str(config), str(ckpt), '--out', str(out)]) == 0
    parity, _ = reports(out)
    manifest = load_bundle(str(out)).manifest
    assert parity['passed'] and manifest.exporter['path'] == 'dynamo'
    assert manifest.exporter['simplify']['tool'] == 'onnxslim'
    assert manifest.input['shape'] == ['batch', 3, 64, 128]
