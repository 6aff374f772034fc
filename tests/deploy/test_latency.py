"""`perception benchmark latency`: percentiles in order, model compute and
end to end for the backend and the PyTorch baseline in one run, JSON out."""
from __future__ import annotations

import json

import pytest

from perception.cli import main
from perception.deploy.latency import parse_size, percentiles

pytest.importorskip('onnxruntime')


def test_percentiles_and_sizes():
    figures = percentiles([0.004, 0.001, 0.002, 0.003, 0.010], batch=2)
    assert figures['p50_ms'] == pytest.approx(3.0)
    assert figures['p99_ms'] == pytest.approx(10.0)
    assert figures['images_per_s'] == pytest.approx(2 / 0.004)
    assert parse_size('384x640') == (384, 640)


def test_latency_of_a_bundle_against_its_eager_model(camera_bundle, tmp_path,
                                                     capsys, monkeypatch):
    bundle, model, cfg = camera_bundle
    # the PyTorch baseline: a checkpoint as perception train writes it
    import torch
    from mmengine.config import Config
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(
        cfg=Config(dict(model=dict(_model_cfg()))).pretty_text,
        pretrained_cfg=cfg.to_dict())), ckpt)
    out = tmp_path / 'latency.json'
    assert main(['benchmark', 'latency', str(bundle), '--baseline', str(ckpt),
                 '--size', '64x96', '--repeats', '3', '--warmup', '1',
                 '--batch', '2', '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'onnxruntime end to end' in printed and 'speed-up' in printed
    report = json.loads(out.read_text())
    assert set(report['results']) == {'model/model', 'model/end_to_end',
                                      'baseline/model', 'baseline/end_to_end'}
    for figures in report['results'].values():
        assert figures['p50_ms'] <= figures['p90_ms'] <= figures['p99_ms']
        assert figures['runs'] == 3 and figures['images_per_s'] > 0
    assert report['backends']['model']['backend'] == 'onnxruntime'
    assert report['backends']['baseline']['backend'] == 'torch'
    assert report['size'] == [64, 96] and report['p50_speedup_vs_baseline'] > 0


def _model_cfg() -> dict:
    return dict(type='Detector', class_names=['car', 'pedestrian'],
                data_preprocessor=dict(mean=[128.0] * 3, std=[64.0] * 3,
                                       pad_size_divisor=32),
                backbone=dict(type='ConvNeXt', in_chans=3,
                              arch=dict(depths=(1, 1, 1, 1),
                                        dims=(16, 24, 32, 48)),
                              out_indices=(1, 2, 3)),
                neck=dict(type='FPN', in_channels=[24, 32, 48],
                          out_channels=32),
                head=dict(type='TALDetHead', in_channels=32, feat_channels=32,
                          prior_prob=0.1))
