"""``perception export-backbone CKPT OUT``: a pretraining checkpoint's
encoder as timm weights (``OUT/model.safetensors``, timm key names) and
``OUT/config.json`` (timm's hub config; our whole ``pretrained_cfg`` under
``"perception"``), so both
``timm.create_model('local-dir:OUT')`` and ``timm.create_model(arch,
pretrained=True, pretrained_cfg_overlay=dict(file='OUT/model.safetensors'),
num_classes=0)`` load it."""
from __future__ import annotations

import json
import os

from perception.data.pretrained_cfg import PretrainedCfg
from perception.fileio import CheckpointError
from perception.models.backbones import read_state_dict


def export_backbone(checkpoint: str, out: str, prefix: str = 'backbone.',
                    trust: bool = False) -> dict:
    """Write ``out/model.safetensors`` and ``out/config.json``.

    Returns:
        The config written.
    """
    from safetensors.torch import save_file
    state_dict, meta = read_state_dict(checkpoint, trust)
    values = meta.get('pretrained_cfg')
    if not values:
        raise CheckpointError(
            f"{checkpoint}: meta.pretrained_cfg is missing; it is written by "
            'perception train (the pretrained_cfg hook) from the model\'s '
            'model and its data preprocessor. Re-save the checkpoint with it, '
            "e.g. ckpt['meta']['pretrained_cfg'] = PretrainedCfg.from_model("
            'model).to_dict()')
    cfg = PretrainedCfg.from_dict(values)
    weights = {k[len(prefix):]: v.detach().contiguous().clone()
               for k, v in state_dict.items() if k.startswith(prefix)}
    if not weights:
        raise CheckpointError(f'{checkpoint}: no keys start with {prefix!r}; '
                         'pass --prefix with the backbone prefix of the model')
    os.makedirs(out, exist_ok=True)
    save_file(weights, os.path.join(out, 'model.safetensors'),
              metadata={'format': 'pt'})
    # timm reads architecture/model_args/pretrained_cfg; the full
    # pretrained_cfg (CT windows, channel meaning, our mean/std scale) is
    # under "perception", which timm ignores
    config = dict(architecture=cfg.architecture, num_classes=0,
                  model_args=dict(cfg.model_args),
                  pretrained_cfg=cfg.to_timm(), perception=cfg.to_dict())
    if 'embed_dim' in cfg.model_args:
        config['num_features'] = cfg.model_args['embed_dim']
    elif 'dims' in cfg.model_args:
        config['num_features'] = cfg.model_args['dims'][-1]
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    return config
