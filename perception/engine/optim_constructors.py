"""Layer-wise learning-rate decay for fine-tuning pretrained backbones
(BEiT, Bao et al. 2022; MAE, He et al. 2022; ConvNeXt, Liu et al. 2022), as
mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` does it.

Each parameter gets a layer id: for the core ``VisionTransformer`` 0 for the
embeddings (``patch_embed``, ``cls_token``, ``pos_embed``), ``i + 1`` for
``blocks.i``, ``depth + 1`` for the final norm; for the core ``ConvNeXt`` 0
for the stem and, by stage, ``s + 1`` for ``stages.s`` (by block: one id per
block, a stage's downsampling with its first block, as ConvNeXt's own
fine-tuning); other timm models use their ``group_matcher``. Everything
outside the backbone (neck, head) gets ``num_layers`` (ViT: ``depth + 1``;
ConvNeXt: stages + 1 or blocks + 1), so the full rate. A parameter's
learning rate is ``lr * lr_mult * layer_decay_rate ** (num_layers -
layer_id)``.

Frozen parameters (``requires_grad=False``: ``frozen_stages``, LoRA's base
weights, the fixed sin-cos position embedding) are not handed to the
optimizer.
"""
from __future__ import annotations

import logging
from typing import Callable

import torch
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from perception.engine.config import ConfigError
from perception.models.backbones import ConvNeXt, VisionTransformer

# one definition of what a norm layer is, shared with freeze_norm
from perception.models.backbones._finetune import NORM_LAYERS
from perception.registry import OPTIM_WRAPPER_CONSTRUCTORS

logger = logging.getLogger('perception')

#: paramwise_cfg keys this constructor reads (mmengine's, less
#: dcn_offset_lr_mult and bypass_duplicate, plus the layer decay's).
PARAMWISE_KEYS = ('layer_decay_rate', 'layer_decay_type', 'layer_decay_scope',
                  'backbone_prefix', 'custom_keys', 'bias_lr_mult', 'bias_decay_mult',
                  'norm_decay_mult', 'dwconv_decay_mult', 'flat_decay_mult')

LayerIds = tuple[Callable[[str], int], int]


#: values of paramwise_cfg.layer_decay_scope.
LAYER_DECAY_SCOPES = ('always', 'pretrained')


def is_pretrained(module: nn.Module) -> bool:
    """Whether ``module`` is initialised from pretrained weights: its
    ``init_cfg`` (as mmengine's ``BaseModule`` and our backbones keep it)
    is, or lists, a dict with ``type='Pretrained'``."""
    init_cfg = getattr(module, 'init_cfg', None)
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(c, dict) and c.get('type') == 'Pretrained'
               for c in cfgs)


def vit_layer_ids(vit: VisionTransformer) -> LayerIds:
    """``(layer_id(name), num_layers)`` of the core ViT's parameter names:
    embeddings 0, ``blocks.i`` i + 1, the rest depth + 1 = num_layers."""
    depth = len(vit.blocks)

    def layer_id(name: str) -> int:
        if (name in ('cls_token', 'pos_embed', 'reg_token')
                or name.startswith('patch_embed.')):
            return 0
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1
        return depth + 1

    return layer_id, depth + 1


def convnext_layer_ids(net: ConvNeXt, by: str = 'stage') -> LayerIds:
    """``(layer_id(name), num_layers)`` of the core ConvNeXt: the stem 0;
    ``by='stage'``: ``stages.s`` s + 1; ``by='block'``: ``stages.s.blocks.b``
    one id per block counted over all stages, a stage's ``downsample`` with
    its first block; the rest num_layers (stages + 1, or blocks + 1)."""
    depths = [len(stage.blocks) for stage in net.stages]
    first = [1 + sum(depths[:s]) for s in range(len(depths))]
    num_layers = len(depths) + 1 if by == 'stage' else sum(depths) + 1

    def layer_id(name: str) -> int:
        parts = name.split('.')
        if parts[0] == 'stem':
            return 0
        if parts[0] != 'stages':
            return num_layers
        stage = int(parts[1])
        if by == 'stage':
            return stage + 1
        if parts[2] == 'blocks':
            return first[stage] + int(parts[3])
        return first[stage]

    return layer_id, num_layers


def timm_layer_ids(backbone: nn.Module, by: str = 'block') -> LayerIds:
    """Layer ids from a timm model's own ``group_matcher`` (coarse for
    ``by='stage'``), as timm's ``param_groups_layer_decay``: the last group
    (a classifier's head, when the model is the backbone) has scale 1."""
    from timm.models import group_parameters
    groups = group_parameters(backbone, backbone.group_matcher(
        coarse=by == 'stage'))
    ids = {name: int(layer) for layer, names in groups.items()
           for name in names}
    num_layers = max(ids.values(), default=0)
    return (lambda name: ids.get(name, num_layers)), num_layers


def backbone_layer_ids(backbone: nn.Module, by: str = 'block') -> LayerIds:
    """The layer ids of ``backbone`` (core ViT, core ConvNeXt, or a timm
    model with ``group_matcher``).

    Raises:
        ValueError: the backbone defines no layers.
    """
    if isinstance(backbone, VisionTransformer):
        return vit_layer_ids(backbone)
    if isinstance(backbone, ConvNeXt):
        return convnext_layer_ids(backbone, by)
    if callable(getattr(backbone, 'group_matcher', None)):
        return timm_layer_ids(backbone, by)
    raise ValueError(
        f'LayerDecayOptimWrapperConstructor: {type(backbone).__name__} has '
        'no layers to decay (it is not the core VisionTransformer or '
        'ConvNeXt, nor a timm model with group_matcher); set '
        'paramwise_cfg.layer_decay_rate=1.0, or backbone_prefix to a '
        'backbone that has them')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Optimizer wrapper with layer-wise lr decay and mmengine's paramwise
    options; frozen parameters are left out.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float): 1.0 (default) is no decay; 0.65-0.75 for
      ViT-B MAE fine-tuning, 0.7-0.9 for small models.
    - ``layer_decay_type``: ``'block'`` (default) or ``'stage'``
      (ConvNeXt: one id per stage; the ViT is always by block).
    - ``layer_decay_scope``: ``'always'`` (default, as mmpretrain) or
      ``'pretrained'``: decay only a backbone initialised from pretrained
      weights (its ``init_cfg``, or that of a module holding it, has
      ``type='Pretrained'``); a backbone trained from scratch gets the
      full rate in every block (rate 1.0, one INFO line says so).
    - ``backbone_prefix``: where the backbone sits in the model
      (``'backbone.'``; ``''`` when the model is the backbone).
    - ``custom_keys``, ``bias_lr_mult``, ``bias_decay_mult``,
      ``norm_decay_mult``, ``dwconv_decay_mult``, ``flat_decay_mult``: as in
      mmengine's ``DefaultOptimWrapperConstructor`` (``custom_keys`` entries
      take ``lr_mult`` and ``decay_mult``); multiplied with the layer scale.

    Example:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        ...     constructor='LayerDecayOptimWrapperConstructor',
        ...     paramwise_cfg=dict(
        ...         layer_decay_rate=0.75, norm_decay_mult=0.0,
        ...         bias_decay_mult=0.0,
        ...         custom_keys={'pos_embed': dict(decay_mult=0.0),
        ...                      'cls_token': dict(decay_mult=0.0)}))

    Param groups are ordered from the head down, so the logged ``lr`` (the
    first group's) is the base rate; each group carries ``name``,
    ``layer_id``, ``lr_scale`` and ``param_names``.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: dict | None = None) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        cfg = self.paramwise_cfg
        unknown = sorted(set(cfg) - set(PARAMWISE_KEYS))
        if unknown:
            raise ValueError(f'LayerDecayOptimWrapperConstructor: unknown '
                             f'paramwise_cfg keys {unknown}; use '
                             f'{list(PARAMWISE_KEYS)}')
        self.decay_rate = float(cfg.get('layer_decay_rate', 1.0))
        if not 0 < self.decay_rate <= 1:
            raise ValueError('paramwise_cfg.layer_decay_rate must be in (0, '
                             f'1], got {self.decay_rate}')
        self.decay_type = cfg.get('layer_decay_type', 'block')
        if self.decay_type not in ('block', 'stage'):
            raise ValueError("paramwise_cfg.layer_decay_type must be 'block' "
                             f"or 'stage', got {self.decay_type!r}")
        self.decay_scope = cfg.get('layer_decay_scope', 'always')
        if self.decay_scope not in LAYER_DECAY_SCOPES:
            raise ConfigError(
                "optim_wrapper.paramwise_cfg.layer_decay_scope must be "
                "'always' (decay every backbone) or 'pretrained' (decay only "
                "a backbone with a Pretrained init_cfg), got "
                f'{self.decay_scope!r}')
        self.prefix = cfg.get('backbone_prefix', 'backbone.')
        self.custom_keys = dict(cfg.get('custom_keys') or {})
        for key, value in self.custom_keys.items():
            extra = sorted(set(value) - {'lr_mult', 'decay_mult'})
            if extra:
                raise ValueError(f'paramwise_cfg.custom_keys[{key!r}]: only '
                                 f"'lr_mult' and 'decay_mult', got {extra}")
        # mmengine's precedence: longest key first, then alphabetical
        self.sorted_keys = sorted(sorted(self.custom_keys), key=len,
                                  reverse=True)

    def __call__(self, model: nn.Module):
        """Build the optimizer wrapper for ``model``'s trainable
        parameters."""
        from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
        if hasattr(model, 'module'):
            model = model.module
        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = dict(self.optimizer_cfg, params=self.param_groups(model))
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(wrapper_cfg,
                                    default_args=dict(optimizer=optimizer))

    def add_params(self, params: list[dict], module: nn.Module,
                   prefix: str = '', is_dcn_module=None) -> None:
        """mmengine's hook for subclasses: append the param groups of
        ``module``."""
        params.extend(self.param_groups(module))

    def _backbone(self, model: nn.Module) -> nn.Module:
        name = self.prefix.rstrip('.')
        try:
            return model.get_submodule(name) if name else model
        except AttributeError:
            children = [n for n, _ in model.named_children()]
            raise ValueError(
                f'LayerDecayOptimWrapperConstructor: {type(model).__name__} '
                f'has no submodule {name!r}; set paramwise_cfg.'
                f'backbone_prefix to where the backbone is (its children: '
                f'{children})') from None

    def _starts_pretrained(self, model: nn.Module) -> bool:
        """Whether the backbone, or a module holding it (the whole model),
        has a Pretrained ``init_cfg``."""
        self._backbone(model)            # a wrong prefix is an error here too
        names = [n for n in self.prefix.rstrip('.').split('.') if n]
        path = [model] + [model.get_submodule('.'.join(names[:i + 1]))
                          for i in range(len(names))]
        return any(is_pretrained(module) for module in path)

    def _decay_rate(self, model: nn.Module) -> float:
        """The rate that applies to ``model``: 1.0 under scope
        ``'pretrained'`` when its backbone starts from random weights."""
        if self.decay_rate == 1.0 or self.decay_scope == 'always' or \
                self._starts_pretrained(model):
            return self.decay_rate
        MMLogger.get_current_instance().info(
            f'layer decay {self.decay_rate:g} not applied: the backbone '
            f'({self.prefix!r}) has no Pretrained init_cfg (trained from '
            "scratch); set paramwise_cfg.layer_decay_scope='always' to "
            'decay anyway')
        return 1.0

    def _layer_ids(self, model: nn.Module, rate: float) -> LayerIds:
        if rate == 1.0:
            return (lambda name: 0), 0
        return backbone_layer_ids(self._backbone(model), self.decay_type)

    def _multipliers(self, name: str, leaf: str, module: nn.Module,
                     param: torch.Tensor) -> tuple[float, float]:
        """``(lr_mult, decay_mult)`` by mmengine's rules."""
        for key in self.sorted_keys:
            if key in name:
                value = self.custom_keys[key]
                return value.get('lr_mult', 1.0), value.get('decay_mult', 1.0)
        cfg = self.paramwise_cfg
        is_norm = isinstance(module, NORM_LAYERS)
        lr_mult = decay_mult = 1.0
        if leaf == 'bias' and not is_norm and cfg.get('bias_lr_mult') \
                is not None:
            lr_mult = cfg['bias_lr_mult']
        is_dwconv = (isinstance(module, nn.Conv2d)
                     and module.in_channels == module.groups)
        for applies, key in ((is_norm, 'norm_decay_mult'),
                             (leaf == 'bias', 'bias_decay_mult'),
                             (is_dwconv, 'dwconv_decay_mult'),
                             (param.ndim == 1, 'flat_decay_mult')):
            if applies and cfg.get(key) is not None:
                decay_mult = cfg[key]
                break
        return lr_mult, decay_mult

    def param_groups(self, model: nn.Module) -> list[dict]:
        """The optimizer's param groups for ``model``: one per (layer, lr,
        weight decay), head first; frozen parameters left out.

        Raises:
            ValueError: nothing in ``model`` is trainable.
        """
        rate = self._decay_rate(model)
        layer_id, num_layers = self._layer_ids(model, rate)
        groups: dict[tuple, dict] = {}
        seen: set[int] = set()
        frozen = 0
        for mod_name, module in model.named_modules():
            for leaf, param in module.named_parameters(recurse=False):
                name = f'{mod_name}.{leaf}' if mod_name else leaf
                if id(param) in seen:
                    continue
                seen.add(id(param))
                if not param.requires_grad:
                    frozen += 1
                    continue
                lr_mult, decay_mult = self._multipliers(name, leaf, module,
                                                        param)
                layer = (layer_id(name[len(self.prefix):])
                         if name.startswith(self.prefix) else num_layers)
                scale = rate ** (num_layers - layer)
                lr = self.base_lr * lr_mult * scale
                wd = (None if self.base_wd is None else
                      self.base_wd * decay_mult)
                group = groups.get((layer, lr, wd))
                if group is None:
                    kind = 'no_decay' if not wd else 'decay'
                    group = groups[(layer, lr, wd)] = dict(
                        name=f'layer_{layer}_{kind}', layer_id=layer,
                        lr_scale=scale, lr=lr, params=[], param_names=[])
                    if wd is not None:
                        group['weight_decay'] = wd
                group['params'].append(param)
                group['param_names'].append(name)
        if not groups:
            raise ValueError(f'{type(model).__name__} has no trainable '
                             'parameter (all have requires_grad=False): '
                             'check frozen_stages / lora in the config')
        ordered = sorted(groups.values(), key=lambda g: (-g['layer_id'],
                                                         -g['lr']))
        for group in ordered:
            logger.info('param group %s: lr %.3g (x%.4g), weight decay %s, '
                        '%d tensors', group['name'], group['lr'],
                        group['lr_scale'], group.get('weight_decay'),
                        len(group['params']))
        logger.info('%d frozen tensors left out of the optimizer', frozen)
        return ordered
