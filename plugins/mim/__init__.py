"""perception_mim: masked-image pretraining (MAE for ViT, FCMAE for
ConvNeXt) on the core backbones."""
from perception.commands import NotAvailableCommand
from perception.registry import COMMANDS

__version__ = '0.1.0'


@COMMANDS.register_module(name='export-backbone')
class ExportBackboneCommand(NotAvailableCommand):
    name = 'export-backbone'
    help = 'write a pretrained encoder as timm safetensors + config.json'
