"""FewPassResponseNorm: timm's GlobalResponseNorm in fewer passes, same
parameters and values; the core ConvNeXt V2 uses it."""
import pytest
import timm
import torch
from timm.layers.grn import GlobalResponseNorm

from perception.models.backbones import ConvNeXt
from perception.models.backbones._grn import FewPassResponseNorm, use_few_pass_grn


@pytest.mark.parametrize('channels_last', [False, True])
def test_same_values_and_gradients_as_timm(channels_last):
    torch.manual_seed(0)
    timm_grn = GlobalResponseNorm(12, channels_last=channels_last)
    with torch.no_grad():
        timm_grn.weight.normal_()
        timm_grn.bias.normal_()
    ours = FewPassResponseNorm(12, channels_last=channels_last)
    ours.load_state_dict(timm_grn.state_dict())
    shape = (2, 5, 7, 12) if channels_last else (2, 12, 5, 7)
    x = torch.randn(shape, requires_grad=True)
    expected = timm_grn(x)
    got = ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    grad = torch.randn(shape)
    (g_timm,) = torch.autograd.grad(expected, x, grad)
    (g_ours,) = torch.autograd.grad(got, x, grad)
    torch.testing.assert_close(g_ours, g_timm, rtol=1e-4, atol=1e-5)


def test_convnext_v2_uses_it_with_timm_keys_and_timm_values():
    net = ConvNeXt('atto', version=2).eval()
    grns = [m for m in net.modules() if isinstance(m, GlobalResponseNorm)]
    assert len(grns) == 12 and all(type(m) is FewPassResponseNorm
                                   for m in grns)
    reference = timm.create_model('convnextv2_atto', num_classes=0).eval()
    torch.manual_seed(1)
    # timm starts GRN at identity (zeros); give it weights that matter
    state = {k: torch.randn_like(v) * 0.1 if '.grn.' in k else v
             for k, v in reference.state_dict().items()}
    reference.load_state_dict(state)
    assert not net.load_state_dict(state, strict=False).unexpected_keys
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = reference.forward_features(x)
        got = net(x)[-1]
    torch.testing.assert_close(net.norm_pre(got), expected, rtol=1e-4,
                               atol=1e-4)


def test_replacement_shares_the_parameters():
    module = torch.nn.Sequential(GlobalResponseNorm(4, channels_last=False))
    weight = module[0].weight
    assert use_few_pass_grn(module) == 1
    assert type(module[0]) is FewPassResponseNorm
    assert module[0].weight is weight and module[0].spatial_dim == (2, 3)
