"""Backbones on timm with timm's parameter names: ViT and ConvNeXt."""
from perception.models.backbones._attention import Attention
from perception.models.backbones._pretrained import load_pretrained, read_state_dict
from perception.models.backbones.convnext import CONVNEXT_ARCHS, ConvNeXt
from perception.models.backbones.vit import VIT_ARCHS, VisionTransformer, sincos_pos_embed

__all__ = ['Attention', 'VisionTransformer', 'ConvNeXt', 'sincos_pos_embed',
           'load_pretrained', 'read_state_dict', 'VIT_ARCHS',
           'CONVNEXT_ARCHS']
