"""perception_mim: masked-image pretraining (MAE for ViT, FCMAE for
ConvNeXt) on the core backbones.

Importing the package is cheap; plugin discovery calls :func:`register`,
which imports the modules that register the models, hooks, metrics and the
benchmark.
"""
from perception._lazy import import_all, lazy_exports

__version__ = '0.1.0'

#: modules that register the subcommands (no torch at import).
COMMAND_MODULES = ('perception_mim.commands', )

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'MAE': 'perception_mim.mae',
    'FCMAE': 'perception_mim.fcmae',
    'MaskedImageModel': 'perception_mim.base',
    'random_masking': 'perception_mim.masking',
    'export_backbone': 'perception_mim.export',
    'write_pretrain_images': 'perception_mim.synth',
})


def register() -> None:
    """Register the plugin's classes in the core's registries."""
    import_all(('perception_mim.mae', 'perception_mim.fcmae',
                'perception_mim.hooks', 'perception_mim.metrics',
                'perception_mim.benchmarks') + COMMAND_MODULES)
