"""Necks: output shapes and strides on the core ViT / ConvNeXt and a timm
backbone, odd input sizes, gradients to every parameter, ONNX export with
ONNX Runtime parity."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from perception.models.backbones import ConvNeXt, TimmBackbone, VisionTransformer
from perception.models.necks import FPN, PAFPN, SimpleFPN
from perception.registry import MODELS

TINY_VIT = dict(embed_dim=32, depth=2, num_heads=2)
ATTO = [40, 80, 160, 320]


def shapes(outs):
    return [tuple(o.shape) for o in outs]


def tiny_vit(patch: int = 16) -> VisionTransformer:
    return VisionTransformer(TINY_VIT, img_size=64, patch_size=patch)


@pytest.fixture(scope='module')
def atto_feats():
    torch.manual_seed(0)
    with torch.no_grad():
        return ConvNeXt('atto')(torch.randn(2, 3, 64, 96))


def test_simple_fpn_on_vit():
    neck = SimpleFPN(32, 24)
    outs = neck(tiny_vit()(torch.randn(2, 3, 64, 96)))
    assert neck.strides == (8, 16, 32) and neck.out_channels == 24
    assert shapes(outs) == [(2, 24, 8, 12), (2, 24, 4, 6), (2, 24, 2, 3)]


@pytest.mark.parametrize('patch, strides', [(8, (8, 16, 32)),
                                            (32, (8, 16, 32)),
                                            (16, (4, 8, 16, 32, 64))])
def test_simple_fpn_other_patches_and_strides(patch, strides):
    neck = SimpleFPN(32, 16, strides=strides, in_stride=patch)
    outs = neck(tiny_vit(patch)(torch.randn(1, 3, 128, 64)))
    assert shapes(outs) == [(1, 16, 128 // s, 64 // s) for s in strides]


def test_simple_fpn_odd_map_rounds_up():
    # a 5x3 stride-16 map: 10x6 at stride 8, ceil -> 3x2 at stride 32
    outs = SimpleFPN(32, 16)((torch.randn(1, 32, 5, 3), ))
    assert shapes(outs) == [(1, 16, 10, 6), (1, 16, 5, 3), (1, 16, 3, 2)]


@pytest.mark.parametrize('cls', [FPN, PAFPN])
def test_pyramid_on_convnext(cls, atto_feats):
    neck = cls(ATTO, 32)
    assert neck.strides == (8, 16, 32) and neck.in_indices == (1, 2, 3)
    assert shapes(neck(atto_feats)) == [(2, 32, 8, 12), (2, 32, 4, 6),
                                        (2, 32, 2, 3)]


@pytest.mark.parametrize('cls', [FPN, PAFPN])
def test_pyramid_levels_and_extra_outputs(cls, atto_feats):
    neck = cls(ATTO, 16, start_level=0, num_outs=6)
    assert neck.strides == (4, 8, 16, 32, 64, 128)
    assert shapes(neck(atto_feats)) == [
        (2, 16, 16, 24), (2, 16, 8, 12), (2, 16, 4, 6), (2, 16, 2, 3),
        (2, 16, 1, 2), (2, 16, 1, 1)]
    assert cls(ATTO, 16, in_indices=(2, 3)).strides == (16, 32)


@pytest.mark.parametrize('size', [(100, 108), (75, 33)])
@pytest.mark.parametrize('cls', [FPN, PAFPN])
def test_pyramid_odd_sizes(cls, size):
    # ConvNeXt rounds down (108 -> 27, 13, 6, 3); PAFPN's stride-2 maps are
    # cropped to them; outputs keep the backbone's sizes
    feats = ConvNeXt('atto')(torch.randn(1, 3, *size))
    outs = cls(ATTO, 16, num_outs=4)(feats)
    assert shapes(outs)[:3] == [tuple(f.shape[:1]) + (16, ) + tuple(
        f.shape[-2:]) for f in feats[1:]]
    h, w = feats[-1].shape[-2:]
    assert tuple(outs[3].shape[-2:]) == (math.ceil(h / 2), math.ceil(w / 2))


@pytest.mark.parametrize('cls', [FPN, PAFPN])
def test_pyramid_on_timm_backbone(cls):
    backbone = TimmBackbone('resnet10t')
    neck = cls(backbone.channels, 16, in_strides=backbone.strides,
               num_outs=4)
    assert neck.strides == (8, 16, 32, 64)
    outs = neck(backbone(torch.randn(1, 3, 100, 108)))
    # resnets round up: ceil(H / s)
    assert shapes(outs) == [(1, 16, math.ceil(100 / s), math.ceil(108 / s))
                            for s in neck.strides]


@pytest.mark.parametrize('neck', [
    SimpleFPN(32, 16, strides=(4, 8, 16, 32)),
    FPN(ATTO, 16, start_level=0, num_outs=5),
    PAFPN(ATTO, 16, num_outs=5, norm='BN'),
    PAFPN(ATTO, 16, norm='LN', act='silu'),
], ids=['simple_fpn', 'fpn', 'pafpn_bn', 'pafpn_ln'])
def test_gradients_reach_every_parameter(neck):
    torch.manual_seed(0)
    if isinstance(neck, SimpleFPN):
        feats = (torch.randn(2, 32, 4, 6), )
    else:
        feats = tuple(torch.randn(2, c, 32 // 2 ** i, 48 // 2 ** i)
                      for i, c in enumerate(ATTO))
    outs = neck(feats)
    # random weights: a plain sum of a normalised map has no gradient
    loss = sum((o * torch.randn_like(o)).sum() for o in outs)
    loss.backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_built_from_registry():
    neck = MODELS.build(dict(type='PAFPN', in_channels=ATTO, out_channels=8))
    assert isinstance(neck, PAFPN) and neck.out_channels == 8
    assert isinstance(MODELS.build(dict(type='SimpleFPN', in_channels=32)),
                      SimpleFPN)


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_indices=(1, 2), start_level=1), 'not both'),
    (dict(in_indices=(1, 7)), 'distinct indices'),
    (dict(num_outs=2), 'fewer than'),
    (dict(in_strides=(8, 16, 32)), 'in_strides'),
    (dict(norm='IN'), 'unknown norm'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FPN(ATTO, 16, **kwargs)
    with pytest.raises(ValueError, match='powers of two'):
        SimpleFPN(32, 16, strides=(8, 12))


class _Net(nn.Module):
    def __init__(self, backbone: nn.Module, neck: nn.Module) -> None:
        super().__init__()
        self.backbone, self.neck = backbone, neck

    def forward(self, x):
        return self.neck(self.backbone(x))


def _export_and_compare(net, x, path, dynamic=False, other=None):
    import onnxruntime as ort
    net.eval()
    names = [f'p{i}' for i in range(len(net.neck.strides))]
    axes = None
    if dynamic:
        axes = {'image': {0: 'b', 2: 'h', 3: 'w'}}
        axes.update({n: {0: 'b', 2: f'h{n}', 3: f'w{n}'} for n in names})
    torch.onnx.export(net, (x, ), str(path), input_names=['image'],
                      output_names=names, opset_version=17,
                      dynamic_axes=axes, dynamo=False)
    session = ort.InferenceSession(str(path),
                                   providers=['CPUExecutionProvider'])
    for inp in [x] + ([other] if other is not None else []):
        with torch.no_grad():
            ref = net(inp)
        got = session.run(None, {'image': inp.numpy()})
        for r, g in zip(ref, got):
            assert r.shape == g.shape
            np.testing.assert_allclose(g, r.numpy(), atol=1e-4, rtol=1e-4)


def test_onnx_vit_simple_fpn(tmp_path):
    torch.manual_seed(0)
    net = _Net(tiny_vit(), SimpleFPN(32, 16, norm='LN'))
    _export_and_compare(net, torch.randn(1, 3, 64, 96), tmp_path / 'v.onnx')


def test_onnx_convnext_pafpn_dynamic_odd_sizes(tmp_path):
    torch.manual_seed(0)
    net = _Net(ConvNeXt('atto'), PAFPN(ATTO, 16, num_outs=4))
    # exported at one size, run at another with odd stage maps (27x13...)
    _export_and_compare(net, torch.randn(1, 3, 64, 96), tmp_path / 'c.onnx',
                        dynamic=True, other=torch.randn(2, 3, 108, 52))


def test_onnx_timm_backbone_fpn(tmp_path):
    torch.manual_seed(0)
    backbone = TimmBackbone('mobilenetv3_small_050')
    net = _Net(backbone, FPN(backbone.channels, 16,
                             in_strides=backbone.strides, norm='BN'))
    _export_and_compare(net, torch.randn(1, 3, 96, 64), tmp_path / 't.onnx',
                        dynamic=True, other=torch.randn(1, 3, 75, 100))
