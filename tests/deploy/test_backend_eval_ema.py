"""`perception test CONFIG BUNDLE --backend onnxruntime` on a config whose
``custom_hooks`` hold an EMAHook (every detection fine-tuning config):
the exported model is fixed, so the hooks that act on a model's weights
are left out of the evaluation run (EMAHook deep-copies the model, and an
ONNX Runtime session cannot be copied), and the metric is the checkpoint's.
A PyTorch test run of the same config keeps its EMAHook. A tiny untrained
ViT on a three-frame generated drive, one legacy export, a real ORT
session (about 15 s of CPU)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from perception import apis
from perception.cli import main

REPO = Path(__file__).resolve().parents[2]
EMA_CONFIG = REPO / ('configs/detection/'
                     'tal_vit-tiny-p16_simplefpn_1000it-45min_synth-drives.py')
pytest.importorskip('onnxruntime')
pytest.importorskip('perception_driving', reason='the KITTI reader lives in '
                    'the driving plugin')


@pytest.fixture(scope='module')
def ema_run(tmp_path_factory):
    """(tiny config with the EMAHook, untrained checkpoint, bundle)."""
    root = tmp_path_factory.mktemp('ema')
    drive = root / 'd'
    assert main(['synth-drive', str(drive), '--seed', '4', '--frames', '3',
                 '--size', '160', '96', '--cameras', '1',
                 '--formats', 'kitti']) == 0
    kitti = drive / 'kitti'
    config = root / 'tiny_ema.py'
    config.write_text(f'''_base_ = ['{EMA_CONFIG}']
model = dict(backbone=dict(_delete_=True, type='VisionTransformer',
                           img_size=(64, 128), patch_size=16, in_chans=3,
                           arch=dict(embed_dim=32, depth=2, num_heads=2),
                           pos_embed_type='sincos'),
             neck=dict(in_channels=32, out_channels=16),
             head=dict(in_channels=16, feat_channels=16))
test_dataloader = dict(_delete_=True, batch_size=3, num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='KittiDataset', data_root='{kitti}/training/',
                 class_map='{kitti}/class_map.yaml', test_mode=True,
                 pipeline=[dict(type='LoadImage'),
                           dict(type='Resize', scale=(128, 64),
                                keep_ratio=True),
                           dict(type='PackInputs')]))
val_dataloader = test_dataloader
test_evaluator = dict(_delete_=True, type='CocoMetric')
''')
    from perception.engine.config import load_config
    from perception.registry import MODELS
    model_cfg = load_config(str(config)).model.to_dict()
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    with torch.no_grad():  # untrained: spread the scores a little
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ckpt = root / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    bundle = apis.export(str(config), str(ckpt), out=str(root / 'b'),
                         legacy=True, simplify=False)
    return config, ckpt, Path(bundle.bundle_dir)


def test_an_ema_config_evaluates_its_bundle_on_onnxruntime(ema_run, tmp_path,
                                                           caplog):
    config, ckpt, bundle = ema_run
    with caplog.at_level(logging.INFO, logger='perception'):
        shipped = apis.test(str(config), str(bundle), work_dir=str(tmp_path),
                            backend='onnxruntime')
    dropped = [r.getMessage() for r in caplog.records
               if 'left out of the evaluation' in r.getMessage()]
    assert dropped == ['onnxruntime test run: hooks EMAHook left out of the '
                       'evaluation (they act on the PyTorch model\'s weights; '
                       'the exported model is fixed)']
    eager = apis.test(str(config), str(ckpt), work_dir=str(tmp_path))
    assert set(shipped) == set(eager) and 'coco/AP' in shipped
    for key in ('coco/AP', 'coco/AP50'):
        assert shipped[key] == pytest.approx(eager[key], abs=1e-3), key


def test_the_torch_test_run_keeps_the_ema_hook(ema_run, tmp_path):
    """PyTorch evaluation still swaps in the EMA weights: only the backend
    runs lose the hook."""
    from perception.engine.launch import RunOptions, build_config
    config, ckpt, bundle = ema_run

    def hooks(backend: str, model: Path) -> list[str]:
        cfg = build_config(str(config), 'test', RunOptions(
            work_dir=str(tmp_path), checkpoint=str(model), backend=backend))
        return [h['type'] for h in cfg.custom_hooks]

    torch_hooks = hooks('torch', ckpt)
    assert torch_hooks[0] == 'EMAHook' and 'TimeBudgetHook' in torch_hooks
    ort_hooks = hooks('onnxruntime', bundle)
    assert ort_hooks == [t for t in torch_hooks if t != 'EMAHook']
