"""Layer-wise lr decay: exact learning rates of every group for a tiny ViT
and ConvNeXt atto; no weight decay where the paramwise options say so;
frozen parameters are left out of the optimizer and never change; a linear
probe trains only the head."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from perception.models.backbones import ConvNeXt, VisionTransformer
from perception.registry import OPTIM_WRAPPER_CONSTRUCTORS

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(embed_dim=32, depth=2, num_heads=2)
NO_DECAY = dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                custom_keys={'pos_embed': dict(decay_mult=0.0),
                             'cls_token': dict(decay_mult=0.0)})


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Probe(nn.Module):
    """backbone -> pooled features -> linear head, as a detector or
    classifier nests them."""

    def __init__(self, backbone: nn.Module, width: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.backbone(x)[-1].mean((2, 3)))


def _wrapper(model, lr=1.0, wd=0.05, **paramwise):
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='LayerDecayOptimWrapperConstructor',
        optim_wrapper_cfg=dict(type='OptimWrapper', optimizer=dict(
            type='AdamW', lr=lr, weight_decay=wd)),
        paramwise_cfg=paramwise))
    return constructor(model)


def _lr_and_wd(wrapper):
    """parameter name -> (lr, weight decay)."""
    return {name: (g['lr'], g['weight_decay'])
            for g in wrapper.optimizer.param_groups
            for name in g['param_names']}


def _steps(model, wrapper, x, n=3):
    for _ in range(n):
        wrapper.update_params(model(x).square().mean())


def test_vit_depth_2_learning_rates_exactly():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8,
                            pos_embed_type='learned')
    groups = _lr_and_wd(_wrapper(Probe(vit, 32), layer_decay_rate=0.5,
                                 **NO_DECAY))
    # num_layers = depth + 1 = 3; scale = 0.5 ** (3 - layer_id)
    expect = {'backbone.cls_token': (0.125, 0.0),
              'backbone.pos_embed': (0.125, 0.0),
              'backbone.patch_embed.proj.weight': (0.125, 0.05),
              'backbone.patch_embed.proj.bias': (0.125, 0.0),
              'backbone.norm.weight': (1.0, 0.0),
              'backbone.norm.bias': (1.0, 0.0),
              'head.weight': (1.0, 0.05), 'head.bias': (1.0, 0.0)}
    for i, lr in ((0, 0.25), (1, 0.5)):
        for leaf in ('attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2'):
            expect[f'backbone.blocks.{i}.{leaf}.weight'] = (lr, 0.05)
            expect[f'backbone.blocks.{i}.{leaf}.bias'] = (lr, 0.0)
        for leaf in ('norm1', 'norm2'):
            expect[f'backbone.blocks.{i}.{leaf}.weight'] = (lr, 0.0)
            expect[f'backbone.blocks.{i}.{leaf}.bias'] = (lr, 0.0)
    assert groups == expect


def test_vit_fixed_sincos_pos_embed_is_not_in_the_optimizer():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8)   # sin-cos
    wrapper = _wrapper(Probe(vit, 32), layer_decay_rate=0.75)
    assert 'backbone.pos_embed' not in _lr_and_wd(wrapper)
    # head first: the logged lr (group 0's) is the base lr
    assert wrapper.optimizer.param_groups[0]['lr'] == 1.0
    assert wrapper.get_lr()['lr'][0] == 1.0


@pytest.mark.parametrize('by,num_layers', [('stage', 5), ('block', 13)])
def test_convnext_atto_learning_rates_exactly(by, num_layers):
    model = Probe(ConvNeXt('atto'), 320)   # depths (2, 2, 6, 2)
    params = dict(model.named_parameters())
    groups = _lr_and_wd(_wrapper(model, layer_decay_rate=0.5,
                                 layer_decay_type=by, flat_decay_mult=0.0))
    assert set(groups) == set(params)
    first = [1, 3, 5, 11]                 # id of each stage's first block
    for name, (lr, wd) in groups.items():
        parts = name.split('.')
        if parts[0] == 'head' or parts[1] == 'head':   # ours, timm's norm
            layer = num_layers
        elif parts[1] == 'stem':
            layer = 0
        elif by == 'stage':
            layer = int(parts[2]) + 1
        elif parts[3] == 'downsample':
            layer = first[int(parts[2])]
        else:
            layer = first[int(parts[2])] + int(parts[4])
        assert lr == 0.5 ** (num_layers - layer), name
        assert wd == (0.0 if params[name].ndim == 1 else 0.05), name
    # spelled out: the stem, the first and last blocks, the head
    assert groups['backbone.stem.0.weight'] == (0.5 ** num_layers, 0.05)
    assert groups['backbone.stages.0.blocks.0.mlp.fc1.weight'][0] == (
        0.5 ** (num_layers - 1))
    assert groups['backbone.stages.2.blocks.5.conv_dw.weight'][0] == (
        0.25 if by == 'stage' else 0.125)        # id 3, or 5 + 5 = 10
    assert groups['backbone.stages.3.blocks.1.mlp.fc2.weight'][0] == 0.5
    assert groups['backbone.stages.3.downsample.1.weight'][0] == (
        0.5 if by == 'stage' else 0.25)
    assert groups['backbone.stages.2.blocks.5.mlp.grn.weight'][1] == 0.0
    assert groups['backbone.head.norm.weight'] == (1.0, 0.0)
    assert groups['head.weight'] == (1.0, 0.05)


def test_frozen_parameters_not_in_the_optimizer_and_unchanged():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8,
                            pos_embed_type='learned', frozen_stages=1)
    model = Probe(vit, 32)
    wrapper = _wrapper(model, lr=1e-2, layer_decay_rate=0.75, **NO_DECAY)
    in_optimizer = {id(p) for g in wrapper.optimizer.param_groups
                    for p in g['params']}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()
              if not p.requires_grad}
    assert set(frozen) >= {'backbone.cls_token', 'backbone.pos_embed',
                           'backbone.blocks.0.attn.qkv.weight'}
    assert not any(id(p) in in_optimizer for n, p in model.named_parameters()
                   if n in frozen)
    live = model.backbone.blocks[1].attn.qkv.weight.detach().clone()
    _steps(model.train(), wrapper, torch.randn(2, 3, 32, 32))
    for name, param in model.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), name
    assert not torch.equal(model.backbone.blocks[1].attn.qkv.weight, live)


@pytest.mark.parametrize('backbone,width,x', [
    (lambda: VisionTransformer(SMALL, img_size=32, patch_size=8,
                               frozen_stages='all'), 32,
     torch.randn(2, 3, 32, 32)),
    (lambda: ConvNeXt(dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
                      frozen_stages=4), 32, torch.randn(2, 3, 64, 64)),
], ids=['vit', 'convnext'])
def test_linear_probe_trains_only_the_head(backbone, width, x):
    model = Probe(backbone(), width)
    wrapper = _wrapper(model, lr=1e-2, layer_decay_rate=0.75)
    assert set(_lr_and_wd(wrapper)) == {'head.weight', 'head.bias'}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _steps(model.train(), wrapper, x)
    changed = {n for n, p in model.named_parameters()
               if not torch.equal(p, before[n])}
    assert changed == {'head.weight', 'head.bias'}


def test_lora_backbone_hands_only_lora_and_head_to_the_optimizer():
    vit = VisionTransformer(SMALL, img_size=32, patch_size=8,
                            lora=dict(rank=2))
    names = set(_lr_and_wd(_wrapper(Probe(vit, 32), layer_decay_rate=0.5)))
    assert names == {'head.weight', 'head.bias'} | {
        f'backbone.blocks.{i}.attn.{m}.lora_{ab}' for i in range(2)
        for m in ('qkv', 'proj') for ab in 'AB'}


def test_timm_model_layers_from_its_group_matcher():
    import timm
    net = timm.create_model('resnet10t', num_classes=3)
    groups = _lr_and_wd(_wrapper(net, layer_decay_rate=0.5,
                                 backbone_prefix='', layer_decay_type='stage'))
    # stem, layer1..4, fc: timm's groups; the last one has scale 1
    assert groups['conv1.0.weight'][0] == 0.5 ** 5
    assert groups['layer4.0.conv1.weight'][0] == 0.5
    assert groups['fc.weight'][0] == 1.0


def test_bad_settings_say_how_to_fix():
    model = Probe(VisionTransformer(SMALL, img_size=32, patch_size=8), 32)
    with pytest.raises(ValueError, match="unknown paramwise_cfg keys "
                       r"\['layer_decay'\]"):
        _wrapper(model, layer_decay=0.5)
    with pytest.raises(ValueError, match="no submodule 'encoder'.*"
                       r"\['backbone', 'head'\]"):
        _wrapper(model, layer_decay_rate=0.5, backbone_prefix='encoder.')
    with pytest.raises(ValueError, match='no layers to decay'):
        _wrapper(Probe(nn.Sequential(nn.Conv2d(3, 4, 1)), 4),
                 layer_decay_rate=0.5)
    with pytest.raises(ValueError, match='no trainable parameter'):
        _wrapper(VisionTransformer(SMALL, img_size=32, patch_size=8,
                                   frozen_stages='all'), backbone_prefix='')


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def mm_log(request):
    """Messages of a fresh current MMLogger instance."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance(f'scope-test-{request.node.name}')
    handler = _Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _scales(wrapper) -> dict[str, float]:
    return {name: g['lr_scale'] for g in wrapper.optimizer.param_groups
            for name in g['param_names']}


def _tiny_vit(**kwargs) -> VisionTransformer:
    return VisionTransformer(SMALL, img_size=32, patch_size=8,
                             pos_embed_type='learned', **kwargs)


def test_scope_pretrained_scratch_backbone_gets_the_full_rate(mm_log):
    scales = _scales(_wrapper(Probe(_tiny_vit(), 32), layer_decay_rate=0.75,
                              layer_decay_scope='pretrained'))
    assert any(n.startswith('backbone.blocks.0.') for n in scales)
    assert set(scales.values()) == {1.0}
    skipped = [m for m in mm_log if 'not applied' in m]
    assert skipped == [
        "layer decay 0.75 not applied: the backbone ('backbone.') has no "
        'Pretrained init_cfg (trained from scratch); set paramwise_cfg.'
        "layer_decay_scope='always' to decay anyway"]


@pytest.mark.parametrize('init_cfg', [
    dict(type='Pretrained', checkpoint='x'),
    [dict(type='Normal', std=0.02), dict(type='Pretrained', checkpoint='x')],
], ids=['dict', 'list'])
def test_scope_pretrained_backbone_decays_as_always(init_cfg, mm_log):
    # no checkpoint is read when the optimizer is built
    always = _scales(_wrapper(Probe(_tiny_vit(), 32), layer_decay_rate=0.75))
    decayed = _scales(_wrapper(Probe(_tiny_vit(init_cfg=init_cfg), 32),
                               layer_decay_rate=0.75,
                               layer_decay_scope='pretrained'))
    assert decayed == always
    assert decayed['backbone.patch_embed.proj.weight'] == 0.75 ** 3
    assert decayed['backbone.blocks.0.attn.qkv.weight'] == 0.75 ** 2
    assert decayed['head.weight'] == 1.0
    assert not [m for m in mm_log if 'not applied' in m]


def test_scope_pretrained_whole_model_init_counts():
    """A Pretrained init_cfg on a module holding the backbone (the whole
    model) initialises the backbone too."""
    model = Probe(_tiny_vit(), 32)
    model.init_cfg = dict(type='Pretrained', checkpoint='x')
    scales = _scales(_wrapper(model, layer_decay_rate=0.5,
                              layer_decay_scope='pretrained'))
    assert scales['backbone.blocks.0.mlp.fc1.weight'] == 0.25


def test_scope_other_init_types_and_default():
    normal = Probe(_tiny_vit(init_cfg=dict(type='Normal', std=0.02)), 32)
    assert set(_scales(_wrapper(normal, layer_decay_rate=0.5,
                                layer_decay_scope='pretrained')
                       ).values()) == {1.0}
    # the default scope is 'always' (mmpretrain's): a scratch ViT decays
    assert min(_scales(_wrapper(Probe(_tiny_vit(), 32),
                                layer_decay_rate=0.5)).values()) == 0.125


def test_bad_layer_decay_scope_says_how_to_fix():
    from perception.errors import UserError
    with pytest.raises(ValueError) as info:
        _wrapper(Probe(_tiny_vit(), 32), layer_decay_rate=0.5,
                 layer_decay_scope='scratch')
    assert isinstance(info.value, UserError)
    assert str(info.value) == (
        "optim_wrapper.paramwise_cfg.layer_decay_scope must be 'always' "
        "(decay every backbone) or 'pretrained' (decay only a backbone with "
        "a Pretrained init_cfg), got 'scratch'")


@pytest.mark.parametrize('name,decays', [
    ('tal_vit-tiny-p16_simplefpn_2000it-60min_synth-ct-lesions.py', False),
    ('tal_vit-tiny-p16-mae_simplefpn_2000it-60min_synth-ct-lesions.py', True),
], ids=['scratch', 'mae'])
def test_finetune_schedule_decays_only_the_pretrained_twin(name, decays):
    from mmengine.registry import DefaultScope

    from perception.engine.config import load_config
    from perception.registry import MODELS
    cfg = load_config(str(REPO / 'configs' / 'detection' / name))
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_scope == 'pretrained'
    model = MODELS.build(cfg.model)          # no weights are read here
    optim = dict(cfg.optim_wrapper.to_dict())
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type=optim.pop('constructor'), optim_wrapper_cfg=optim,
        paramwise_cfg=optim.pop('paramwise_cfg')))
    with DefaultScope.overwrite_default_scope('perception'):
        wrapper = constructor(model)
    scales = _scales(wrapper)
    if decays:
        # ViT-Tiny: 12 blocks, the embeddings at 0.75 ** 13
        assert scales['backbone.patch_embed.proj.weight'] == 0.75 ** 13
        assert scales['backbone.blocks.11.attn.qkv.weight'] == 0.75
    else:
        assert set(scales.values()) == {1.0}
    assert all(s == 1.0 for n, s in scales.items()
               if not n.startswith('backbone.'))


@pytest.mark.parametrize('scratch', [
    # finetune_20min.py, finetune_40k.py (finetune_detection.py: below)
    'configs/segmentation/fpnseg_vit-tiny-p16_simplefpn_1000it-20min_synth-drives-semseg.py',
    'configs/segmentation/fpnseg_convnext-atto_fpn_40k_cityscapes.py'])
def test_scratch_configs_train_at_full_rate_and_twins_decay(scratch):
    """The fine-tuning schedules decay only pretrained backbones: a scratch
    config has one lr scale, its pretrained twin (same config plus a
    Pretrained init_cfg, built without loading) decays its early blocks."""
    from perception.engine.config import load_config
    from perception.registry import MODELS
    cfg = load_config(str(REPO / scratch))
    wrapper_cfg = dict(cfg.optim_wrapper)
    paramwise = dict(wrapper_cfg.pop('paramwise_cfg'))
    assert paramwise['layer_decay_scope'] == 'pretrained'
    assert paramwise['layer_decay_rate'] < 1.0
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type=wrapper_cfg.pop('constructor'), optim_wrapper_cfg=wrapper_cfg,
        paramwise_cfg=paramwise))
    model = MODELS.build(cfg.model)
    assert set(_scales(constructor(model)).values()) == {1.0}
    model.backbone.init_cfg = dict(type='Pretrained', checkpoint='x.pth')
    scales = _scales(constructor(model))
    assert min(scales.values()) < 0.1 and max(scales.values()) == 1.0
