"""The ONNX Runtime backend: preprocessing equal to the val pipeline (a
camera frame and a CT slab), detections equal to the PyTorch Detector's
predict in source pixels, session settings, and bad models as one-line
errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from deploy_helpers import make_bundle, pretrained_cfg, tiny_detector

from perception.data.frames import frame_to_sample, slab_to_sample
from perception.data.transforms import PackInputs, Resize
from perception.deploy.backends import BackendError, TorchBackend
from perception.deploy.manifest import BundleError
from perception.deploy.predictor import Predictor, load_predictor
from perception.sources import Frame

pytest.importorskip('onnxruntime')


def _val_pipeline(model, results: dict, scale) -> tuple:
    """Training's val path: Resize(keep_ratio) + PackInputs, then the
    model's data preprocessor; returns (inputs, samples)."""
    results = Resize(scale, keep_ratio=True)(results)
    packed = PackInputs()(results)
    data = model.data_preprocessor(dict(inputs=[packed['inputs']],
                                        data_samples=[packed['data_samples']]))
    return data['inputs'], data['data_samples']


def _camera_frame(seed=1, shape=(90, 150, 3)) -> Frame:
    image = np.random.default_rng(seed).integers(0, 256, shape, np.uint8)
    return Frame(image, 123_000, 7, 'front', dict(clock='pts'))


def test_camera_frame_preprocessing_equals_the_val_pipeline(camera_bundle):
    bundle, model, cfg = camera_bundle
    frame = _camera_frame()
    predictor = load_predictor(str(bundle))
    tensor, sample = predictor.prepare(frame)
    expected, samples = _val_pipeline(model, frame_to_sample(frame), (96, 64))
    batch = predictor.collate([tensor], [sample])
    torch.testing.assert_close(batch, expected, rtol=0, atol=0)
    np.testing.assert_allclose(sample.homography_matrix,
                               samples[0].homography_matrix, rtol=1e-6)
    assert sample.ori_shape == (90, 150) and sample.img_shape == (58, 96)
    assert sample.camera == 'front' and sample.timestamp_ns == 123_000


def test_onnxruntime_detections_equal_the_pytorch_predict(camera_bundle):
    bundle, model, cfg = camera_bundle
    frame = _camera_frame(seed=2)
    inputs, samples = _val_pipeline(model, frame_to_sample(frame), (96, 64))
    with torch.no_grad():
        expected = model.predict(inputs, samples)[0].pred_instances
    got = load_predictor(str(bundle)).predict([frame])[0]
    assert got.pred_space == 'source'
    inst = got.pred_instances
    assert len(expected) > 10 and len(inst) == len(expected)
    torch.testing.assert_close(inst.bboxes, expected.bboxes, atol=2e-3,
                               rtol=0)
    torch.testing.assert_close(inst.scores, expected.scores, atol=1e-4,
                               rtol=0)
    assert inst.labels.tolist() == expected.labels.tolist()
    # the torch backend is the eager model itself: exactly predict's output
    eager = Predictor(TorchBackend(model, pretrained_cfg=cfg)).predict(
        [frame])[0].pred_instances
    torch.testing.assert_close(eager.bboxes, expected.bboxes, rtol=0, atol=0)


def test_a_batch_of_mixed_sizes_equals_the_val_pipelines_batch(
        camera_bundle):
    """Padded together (to the larger image, then to 32s) as the data
    preprocessor pads a val batch."""
    bundle, model, _ = camera_bundle
    predictor = load_predictor(str(bundle), score_thr=0.2)
    frames = [_camera_frame(3, (90, 150, 3)), _camera_frame(4, (64, 64, 3))]
    packed = [PackInputs()(Resize((96, 64), keep_ratio=True)(
        frame_to_sample(f))) for f in frames]
    data = model.data_preprocessor(dict(
        inputs=[p['inputs'] for p in packed],
        data_samples=[p['data_samples'] for p in packed]))
    with torch.no_grad():
        expected = model.predict(data['inputs'], data['data_samples'],
                                 score_thr=0.2)
    for frame, got, want in zip(frames, predictor.predict(frames), expected):
        assert len(got.pred_instances) == len(want.pred_instances) > 0
        torch.testing.assert_close(got.pred_instances.bboxes,
                                   want.pred_instances.bboxes, atol=2e-3,
                                   rtol=0)
        boxes = got.pred_instances.bboxes
        assert float(boxes[:, 2].max()) <= frame.image.shape[1]
        assert (got.pred_instances.scores > 0.2).all()


def test_a_static_bundle_takes_any_number_of_frames(camera_bundle,
                                                    tmp_path):
    """Batch 1 at 64x96: frames are fed one at a time and padded to the
    fixed size (zeros after normalization, as the preprocessor pads)."""
    _, model, cfg = camera_bundle
    static = make_bundle(tmp_path / 'static', model, cfg, 64, 96, static=True)
    fixed = load_predictor(str(static))
    assert fixed.backend.static_batch == 1
    assert fixed.backend.input_shape == (3, 64, 96)
    frames = [_camera_frame(6, (60, 96, 3)), _camera_frame(7, (64, 64, 3))]
    got = fixed.predict(frames)
    for frame, sample in zip(frames, got):
        inputs, samples = _val_pipeline(model, frame_to_sample(frame),
                                        (96, 64))
        inputs = torch.nn.functional.pad(
            inputs, (0, 96 - inputs.shape[-1], 0, 64 - inputs.shape[-2]))
        with torch.no_grad():
            want = model.predict(inputs, samples)[0].pred_instances
        assert len(sample.pred_instances) == len(want) > 0
        torch.testing.assert_close(sample.pred_instances.bboxes, want.bboxes,
                                   atol=2e-3, rtol=0)


def test_session_settings_and_io_binding(camera_bundle):
    bundle, _, _ = camera_bundle
    plain = load_predictor(str(bundle), threads=1)
    bound = load_predictor(str(bundle), threads=1, io_binding=True)
    options = plain.backend.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert plain.backend.io_binding is False and bound.backend.io_binding
    x = torch.randn(2, 3, 64, 96)
    for a, b in zip(plain.backend.run(x), bound.backend.run(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ct_slab_preprocessing_and_predictions_equal_the_val_pipeline(
        tmp_path):
    """A CT model: 3 slices (-1, 0, +1) through one window -> 3 channels."""
    windows = [(-600.0, 1500.0)]
    model = tiny_detector(mean=(0.5, ) * 3, std=(0.25, ) * 3,
                          windows=windows)
    cfg = pretrained_cfg(model, scale=(64, 64), slice_offsets=[-1, 0, 1])
    assert cfg.in_chans == 3 and cfg.windows == [(-600.0, 1500.0)]
    bundle = make_bundle(tmp_path / 'ct', model, cfg, 64, 64)
    rng = np.random.default_rng(5)
    affine = np.diag([2.5, 0.7, 0.7, 1.0]).astype(np.float32)
    frames = [Frame(rng.uniform(-1000, 400, (80, 80)).astype(np.float32),
                    i, i, 'dicom', dict(series_uid='1.2.3', slice_index=i,
                                        affine=affine, clock='index'))
              for i in range(3)]
    predictor = load_predictor(str(bundle))
    slab = np.stack([f.image for f in frames], axis=-1)
    tensor, sample = predictor.prepare(frames[1], slab)
    results = slab_to_sample(frames, [-1, 0, 1], centre=1)
    expected, samples = _val_pipeline(model, results, (64, 64))
    torch.testing.assert_close(predictor.collate([tensor], [sample]),
                               expected, rtol=0, atol=0)
    assert sample.series_uid == '1.2.3' and sample.slice_index == 1
    with torch.no_grad():
        eager = model.predict(expected, samples)[0].pred_instances
    got = predictor.predict([frames[1]], [slab])[0].pred_instances
    assert len(got) == len(eager) > 0
    torch.testing.assert_close(got.bboxes, eager.bboxes, atol=2e-3, rtol=0)


def test_a_corrupt_model_and_a_foreign_manifest_are_bundle_errors(
        camera_bundle, tmp_path):
    bundle, _, _ = camera_bundle
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes((bundle / 'model.onnx').read_bytes()[:2000])
    with pytest.raises(BundleError, match='broken.onnx'):
        load_predictor(str(broken))
    foreign = tmp_path / 'foreign'
    shutil.copytree(bundle, foreign)
    manifest = json.loads((foreign / 'manifest.json').read_text())
    manifest['pretrained_cfg']['class_names'] = ['car', 'pedestrian', 'bus']
    (foreign / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match='scores 2 classes .* names 3'):
        load_predictor(str(foreign)).predict([_camera_frame()])


def test_the_wrong_backend_for_a_model_is_a_user_error(camera_bundle,
                                                       tmp_path):
    bundle, _, _ = camera_bundle
    with pytest.raises(BackendError, match='--backend onnxruntime'):
        load_predictor(str(bundle), 'torch')
    ckpt = tmp_path / 'epoch_1.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(BackendError, match='export it first'):
        load_predictor(str(ckpt), 'onnxruntime')
    with pytest.raises(BackendError, match='unknown backend'):
        load_predictor(str(bundle), 'tflite')
