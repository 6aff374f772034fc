"""TimmBackbone: channels and strides from timm's feature_info, no download
at run time, weights from a local file with timm's key names."""
from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from perception.errors import UserError
from perception.models.backbones import TimmBackbone
from perception.registry import MODELS


def test_channels_and_strides_from_feature_info():
    net = TimmBackbone('mobilenetv3_small_050', out_indices=(1, 2, 3, 4),
                       in_chans=1)
    outs = net(torch.randn(2, 1, 64, 96))
    assert net.strides == [4, 8, 16, 32] and net.out_indices == (1, 2, 3, 4)
    assert [o.shape[1] for o in outs] == net.channels
    assert [tuple(o.shape[-2:]) for o in outs] == [(64 // s, 96 // s)
                                                  for s in net.strides]


def test_default_is_the_last_three_levels():
    net = MODELS.build(dict(type='TimmBackbone', model_name='resnet10t'))
    assert isinstance(net, TimmBackbone)
    assert net.strides == [8, 16, 32] and net.out_indices == (2, 3, 4)
    assert isinstance(net(torch.randn(1, 3, 64, 64)), tuple)


def test_pretrained_true_is_refused():
    with pytest.raises(UserError, match='download them once.*init_cfg'):
        TimmBackbone('resnet10t', pretrained=True)


def _timm_file(tmp_path, name, prefix=''):
    torch.manual_seed(1)
    full = timm.create_model(name, pretrained=False)
    path = tmp_path / 'model.safetensors'
    save_file({prefix + k: v.contiguous() for k, v in
               full.state_dict().items()}, str(path))
    return full, path


@pytest.mark.parametrize('name, prefix', [('resnet10t', ''),
                                          ('convnext_atto', 'backbone.')])
def test_loads_a_timm_file(tmp_path, name, prefix):
    # convnext's features model renames stages.0 -> stages_0; a detector's
    # checkpoint has its keys under backbone.
    full, path = _timm_file(tmp_path, name, prefix)
    net = TimmBackbone(name, init_cfg=dict(type='Pretrained',
                                           checkpoint=str(path)))
    net.init_weights()
    assert net.load_report['missing'] == []
    x = torch.randn(1, 3, 64, 64)
    net.eval(), full.eval()
    with torch.no_grad():
        # the deepest map is the full timm model's last features
        torch.testing.assert_close(net(x)[-1], full.forward_features(x))


def test_first_conv_adapted_to_one_channel(tmp_path):
    full, path = _timm_file(tmp_path, 'resnet10t')
    net = TimmBackbone('resnet10t', in_chans=1, init_cfg=dict(
        type='Pretrained', checkpoint=str(path)))
    net.init_weights()
    assert net.load_report['missing'] == []
    rgb = full.state_dict()['conv1.0.weight']
    torch.testing.assert_close(net.model.conv1[0].weight,
                               rgb.sum(dim=1, keepdim=True))
