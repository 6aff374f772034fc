"""Helpers of the deploy tests: a tiny detector, its PretrainedCfg, and a
bundle made from it (the core Detector in ``mode='tensor'`` is exactly what
``perception export`` exports: decoded boxes and per-class scores, NMS
outside)."""
from __future__ import annotations

from pathlib import Path

import torch

from perception.data import PretrainedCfg
from perception.deploy.manifest import MODEL_FILE, Manifest, sha256_file
from perception.models import Detector

CLASSES = ['car', 'pedestrian']


def tiny_detector(in_chans: int = 3, mean=(128.0, ) * 3, std=(64.0, ) * 3,
                  windows=None, seed: int = 0) -> Detector:
    torch.manual_seed(seed)
    preprocessor = dict(mean=list(mean), std=list(std), pad_size_divisor=32)
    if windows:
        preprocessor['windows'] = windows
    model = Detector(
        class_names=CLASSES, data_preprocessor=preprocessor,
        backbone=dict(type='ConvNeXt', in_chans=in_chans,
                      arch=dict(depths=(1, 1, 1, 1), dims=(16, 24, 32, 48)),
                      out_indices=(1, 2, 3)),
        neck=dict(type='FPN', in_channels=[24, 32, 48], out_channels=32),
        head=dict(type='TALDetHead', in_channels=32, feat_channels=32,
                  prior_prob=0.1))
    # untrained heads score everything near the prior; spread the scores
    # so that NMS and thresholds have work to do
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def pretrained_cfg(model: Detector, scale=(96, 64), keep_ratio=True,
                   slice_offsets=()) -> PretrainedCfg:
    pipeline = [dict(type='Resize', scale=scale, keep_ratio=keep_ratio)]
    return PretrainedCfg.from_model(model, pipeline, class_names=CLASSES,
                                    slice_offsets=slice_offsets)


class _Tensor(torch.nn.Module):
    def __init__(self, model: Detector) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


def make_bundle(out: Path, model: Detector, cfg: PretrainedCfg,
                height: int = 64, width: int = 96, static: bool = False
                ) -> Path:
    """``out/model.onnx`` + ``out/manifest.json``: dynamic batch and size,
    or with ``static`` batch 1 at ``height`` x ``width``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / MODEL_FILE
    dummy = torch.zeros(1, cfg.in_chans, height, width)
    torch.onnx.export(_Tensor(model), (dummy, ), str(path), dynamo=False,
                      opset_version=17, input_names=['inputs'],
                      output_names=['boxes', 'scores'],
                      dynamic_axes={'inputs': {0: 'batch', 2: 'height',
                                               3: 'width'},
                                    'boxes': {0: 'batch', 1: 'num_priors'},
                                    'scores': {0: 'batch', 1: 'num_priors'}}
                      if not static else None)
    manifest = Manifest(pretrained_cfg=cfg.to_dict(),
                        dynamic='none' if static else 'batch,hw')
    manifest.input['shape'] = [1, cfg.in_chans, height, width] if static \
        else ['batch', cfg.in_chans, 'height', 'width']
    with torch.no_grad():
        priors = int(model(dummy, mode='tensor')[0].shape[1])
    batch, priors = (1, priors) if static else ('batch', 'num_priors')
    manifest.outputs['shapes'] = {'boxes': [batch, priors, 4],
                                  'scores': [batch, priors, len(CLASSES)]}
    manifest.postprocess.update(model.head.test_cfg)
    manifest.postprocess.pop('pre_nms_top_k', None)
    manifest.exporter = dict(path='legacy', torch=torch.__version__)
    manifest.sha256 = sha256_file(str(path))
    manifest.write(str(out))
    return out
