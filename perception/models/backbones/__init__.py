"""Backbones on timm with timm's parameter names: ViT, ConvNeXt and any
timm model as a multi-scale backbone (TimmBackbone)."""
from perception.models.backbones._attention import Attention
from perception.models.backbones._pretrained import load_pretrained, read_state_dict
from perception.models.backbones.convnext import CONVNEXT_ARCHS, ConvNeXt
from perception.models.backbones.timm_backbone import TimmBackbone
from perception.models.backbones.vit import VIT_ARCHS, VisionTransformer, sincos_pos_embed

__all__ = ['Attention', 'VisionTransformer', 'ConvNeXt', 'TimmBackbone',
           'sincos_pos_embed',
           'load_pretrained', 'read_state_dict', 'VIT_ARCHS',
           'CONVNEXT_ARCHS']
