"""``perception browse CONFIG``: pictures of samples exactly as the
pipeline delivers them (after augmentation), to check data before training
(mmdet's ``browse_dataset``).

Each picture shows the image (CT windowed per the config's
``data_preprocessor.windows``, one panel per window), every box in its
class colour with its label, and ignore regions shaded and hatched in grey.
The dataset is built through ``perception.registry.DATASETS`` directly; no
model or runner is needed.

Pictures are named and captioned after the sample's file, unless the
config's privacy guard hides its path (a private ``data_root``, see
:mod:`perception.engine.privacy`): then by series UID and slice index (a
digest of the UID in the file name), or by a digest of the path.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from perception.engine.config import ConfigError, load_config
from perception.registry import DATASETS
from perception.visualization.draw import render_sample


def find_windows(cfg) -> list:
    """CT windows of the config's data preprocessor ([] when none)."""
    for holder in (cfg.get('model') or {}, cfg):
        pre = holder.get('data_preprocessor') if hasattr(holder,
                                                         'get') else None
        if pre and pre.get('windows'):
            return [tuple(w) for w in pre['windows']]
    return []


def browse(config: str, split: str = 'train', n: int = 16,
           out: str | None = None, cfg_options: Sequence[str] = (),
           seed: int = 0) -> list[str]:
    """Write ``n`` pictures of ``split`` samples of ``config`` to ``out``.

    Returns:
        The paths written.
    """
    import random

    import torch

    cfg = load_config(config, cfg_options)
    key = f'{split}_dataloader'
    if key not in cfg or 'dataset' not in cfg[key]:
        splits = [k[:-len('_dataloader')] for k in cfg.keys()
                  if k.endswith('_dataloader')]
        raise ConfigError(f"{config}: no {key}.dataset; splits in this config: "
                         f"{', '.join(splits) or 'none'}")
    from perception.engine.privacy import redactor_for, sample_caption, sample_name
    redactor = redactor_for(cfg)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    from mmengine.registry import DefaultScope

    # in perception's scope, as under the Runner: mmengine's ConcatDataset
    # builds its parts through mmengine's root registry
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'perception')):
        dataset = DATASETS.build(cfg[key]['dataset'])
    classes = tuple((getattr(dataset, 'metainfo', None) or {}).get(
        'classes') or ())
    windows = find_windows(cfg)
    out = out or os.path.join('work_dirs', 'browse', os.path.splitext(
        os.path.basename(config))[0])
    os.makedirs(out, exist_ok=True)
    written = []
    for i in range(min(n, len(dataset))):
        packed = dataset[i]
        sample = packed['data_samples']
        meta = sample.metainfo
        path = str(meta.get('img_path', f'sample{i}'))
        caption = (f"{sample_caption(path, meta, redactor)}  "
                   f"{tuple(meta.get('img_shape', ()))}"
                   f"  flip={meta.get('flip', '-')}  scale="
                   + ','.join(f'{s:.2f}' for s in meta.get('scale_factor',
                                                             (1, 1))))
        picture = render_sample(packed['inputs'], sample, classes, windows,
                                caption)
        path = os.path.join(
            out, f'{split}_{i:03d}_{sample_name(path, meta, redactor)}.png')
        picture.save(path)
        written.append(path)
    return written
