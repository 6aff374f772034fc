"""perception_mim: masked-image pretraining (MAE for ViT, FCMAE for
ConvNeXt) on the core backbones."""
from perception_mim import fcmae, hooks, mae, metrics  # noqa: F401
from perception_mim import export  # noqa: F401
from perception_mim import benchmark  # noqa: F401
from perception_mim import synthetic  # noqa: F401

__version__ = '0.1.0'
