"""What ships is what was measured: a tiny detector trained on a generated
drive, exported with `perception export` (NMS outside, and NMS in the
graph), gives the same COCO AP under `perception test --backend
onnxruntime` as the PyTorch checkpoint does, and the same detections through
the Predictor from the checkpoint (torch) and from the bundle
(onnxruntime). Slow (training plus two verified exports: about 50 s of
CPU): run with -m slow."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from perception import apis
from perception.cli import main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
pytest.importorskip('onnxruntime')
pytest.importorskip('perception_driving', reason='the KITTI reader lives in '
                    'the driving plugin')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(config, work dir, bundle nms=none, bundle nms=onnx)."""
    root = tmp_path_factory.mktemp('eval')
    drive = root / 'd'
    assert main(['synth-drive', str(drive), '--seed', '5', '--frames', '4',
                 '--size', '256', '144', '--cameras', '1',
                 '--formats', 'kitti']) == 0
    kitti = drive / 'kitti'
    data = str(kitti / 'training') + '/'
    config = root / 'tiny_det.py'
    config.write_text(f'''
_base_ = ['{REPO}/configs/_base_/models/det_convnext-atto_fpn.py',
          '{REPO}/configs/_base_/datasets/synth_drives_kitti.py',
          '{REPO}/configs/_base_/schedules/adamw_3e.py',
          '{REPO}/configs/_base_/default_runtime.py']
model = dict(backbone=dict(_delete_=True, type='ConvNeXt', out_indices=(1, 2, 3),
                           arch=dict(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48))),
             neck=dict(in_channels=[24, 32, 48], out_channels=32),
             head=dict(in_channels=32, feat_channels=32))
def _data(pipeline, test_mode):
    return dict(_delete_=True, type='KittiDataset', data_root='{data}',
                class_map='{kitti}/class_map.yaml', test_mode=test_mode,
                filters=dict(min_height=8), pipeline=pipeline)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=_data([dict(type='LoadImage'), dict(type='PackInputs')], False))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    dataset=_data([dict(type='LoadImage'), dict(type='Resize',
        scale=(192, 108), keep_ratio=True), dict(type='PackInputs')], True))
test_dataloader = val_dataloader
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=3)
''')
    work = root / 'work'
    apis.train(str(config), work_dir=str(work))
    bundle = apis.export(str(config), str(work), out=str(root / 'bundle'))
    nms = apis.export(str(config), str(work), out=str(root / 'bundle_nms'),
                      nms='onnx', dynamic='none')
    return config, work, Path(bundle.bundle_dir), Path(nms.bundle_dir)


def test_the_exported_models_metric_equals_the_checkpoints(trained):
    config, work, bundle, nms = trained
    eager = apis.test(str(config), str(work), work_dir=str(work))
    shipped = apis.test(str(config), str(bundle), work_dir=str(work),
                        backend='onnxruntime')
    assert eager['coco/AP50'] > 0  # the model learnt something to compare
    for key in ('coco/AP', 'coco/AP50'):
        assert shipped[key] == pytest.approx(eager[key], abs=1e-3), key
    in_graph = apis.test(str(config), str(nms), work_dir=str(work),
                         backend='onnxruntime')
    assert in_graph['coco/AP50'] == pytest.approx(eager['coco/AP50'],
                                                  abs=0.02)


def test_checkpoint_and_bundle_predict_the_same(trained):
    from perception.deploy.predictor import load_predictor
    from perception.sources import open_source
    config, work, bundle, nms = trained
    with open_source(str(Path(str(config)).parent / 'd' / 'kitti' /
                         'training' / 'image_2')) as source:
        frames = list(source)[:2]
    torch_pred = load_predictor(str(work), score_thr=0.3)
    assert torch_pred.backend.name == 'torch'
    for model in (bundle, nms):
        ort_pred = load_predictor(str(model), score_thr=0.3)
        for a, b in zip(torch_pred.predict(frames), ort_pred.predict(frames)):
            a, b = a.pred_instances, b.pred_instances
            assert len(a) == len(b)
            torch.testing.assert_close(a.bboxes, b.bboxes, atol=0.05, rtol=0)
            assert a.labels.tolist() == b.labels.tolist()
