"""Images for INT8 calibration and for the precision gate, drawn through the
project's own datasets and preprocessing.

A *labelled sample* is a dict: ``image`` (the source pixels as the
dataset's own loading transform reads them: RGB uint8, or a CT slice's
2.5D slab (H, W, K) in HU), ``gt_bboxes`` (N, 4) xyxy in source pixels,
``gt_labels`` (N,), ``gt_ignore`` (N,) bool, ``meta`` (``series_uid``,
``slice_index``, ``affine`` where the dataset gives them: what a per-scan
metric needs), ``name``. They come from a config's split (``val`` /
``test`` / ``train``: the dataset's own reader, its parsed annotations;
the bundle's PretrainedCfg then windows CT slabs) or, for calibration only,
from a folder of images. Network inputs are made from them by the bundle's
:class:`~perception.data.PretrainedCfg` (the val pipeline's resize and
normalization, tested identical) and padded to the export size, as the
ONNX Runtime backend feeds the model.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import numpy as np

from perception.errors import UserError

__all__ = ['CalibrationError', 'SPLITS', 'split_samples', 'folder_samples',
           'network_inputs', 'draw', 'source_image']

SPLITS = ('val', 'test', 'train')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


class CalibrationError(UserError, ValueError):
    """Calibration or gate data cannot be drawn (missing split, empty
    folder, an image larger than the export size)."""


def split_samples(config: str, split: str, cfg_options: Sequence[str] = ()
                  ) -> tuple[Any, int]:
    """``(dataset, length)`` of ``config``'s ``<split>_dataloader``."""
    from mmengine.registry import DefaultScope

    from perception.engine.config import load_config
    from perception.registry import DATASETS
    cfg = load_config(config, cfg_options)
    key = f'{split}_dataloader'
    if key not in cfg or 'dataset' not in (cfg[key] or {}):
        raise CalibrationError(
            f"{config}: no {key}.dataset to draw '{split}' images from; pass "
            '--calib-data with a folder of images or a split the config has')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'perception')):
        dataset = DATASETS.build(cfg[key]['dataset'])
    return dataset, len(dataset)


#: meta keys of a sample that the gate's metric may need (CT slices)
META_KEYS = ('series_uid', 'slice_index', 'affine')


def _leaf(dataset: Any, index: int) -> tuple[Any, int]:
    """The dataset (inside ConcatDataset-like wrappers) holding sample
    ``index``, and its index there."""
    while hasattr(dataset, 'datasets') and \
            hasattr(dataset, '_get_ori_dataset_idx'):
        which, index = dataset._get_ori_dataset_idx(index)
        dataset = dataset.datasets[which]
    return dataset, index


def source_image(dataset: Any, info: dict) -> np.ndarray:
    """The sample's source pixels as the dataset itself reads them: its
    pipeline run up to the first transform that gives ``img`` (LoadImage:
    RGB uint8; a CT dataset's slice loader: the 2.5D slab (H, W, K) in HU),
    else ``img_path`` read as an image."""
    from perception.data.image_io import read_image
    pipeline = getattr(getattr(dataset, 'pipeline', None), 'transforms', ())
    results: dict | None = dict(info)
    for transform in pipeline:
        try:
            results = transform(results)
        except (KeyError, TypeError, AttributeError):
            break  # a transform that needs an image first: not a loader
        if results is None:
            break
        if results.get('img') is not None:
            return np.asarray(results['img'])
    return read_image(info['img_path'])


def _labelled(dataset: Any, index: int) -> dict:
    leaf, at = _leaf(dataset, index)
    info = leaf.get_data_info(at)
    path = info.get('img_path')
    if not path:
        raise CalibrationError(f'{type(leaf).__name__} sample {index} has '
                               'no img_path; the gate reads image datasets')
    boxes = np.asarray(info.get('gt_bboxes', np.zeros((0, 4))),
                       np.float32).reshape(-1, 4)
    labels = np.asarray(info.get('gt_labels', np.zeros(0)), np.int64)
    ignore = np.asarray(info.get('gt_ignore_flags',
                                 np.zeros(len(labels), bool)), bool)
    meta = {k: info[k] for k in META_KEYS if k in info}
    return dict(image=source_image(leaf, info), gt_bboxes=boxes,
                gt_labels=labels, gt_ignore=ignore, meta=meta,
                name=os.path.basename(str(path)))


def dataset_samples(dataset: Any, indices: Sequence[int]) -> Iterator[dict]:
    """Labelled samples of ``dataset`` (its parsed annotations)."""
    for index in indices:
        yield _labelled(dataset, int(index))


def folder_samples(folder: str, count: int) -> list[dict]:
    """Up to ``count`` images of ``folder`` (sorted by name), unlabelled."""
    from perception.data.image_io import read_image
    if not os.path.isdir(folder):
        raise CalibrationError(f"--calib-data '{folder}': not a folder of "
                               f'images nor one of {", ".join(SPLITS)}')
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(IMAGE_EXTENSIONS))[:count]
    if not names:
        raise CalibrationError(f"--calib-data '{folder}' holds no "
                               f'{"/".join(IMAGE_EXTENSIONS)} images')
    return [dict(image=read_image(os.path.join(folder, n)), name=n)
            for n in names]


def network_inputs(samples: Sequence[dict], pretrained: Any,
                   size: Sequence[int]) -> list[np.ndarray]:
    """Each sample's image through ``pretrained`` (PretrainedCfg),
    padded bottom/right with zeros to ``size`` (H, W): (1, C, H, W)."""
    import torch.nn.functional as F
    height, width = int(size[0]), int(size[1])
    out = []
    for sample in samples:
        tensor = pretrained.preprocess(sample['image'])
        if tensor.shape[1] > height or tensor.shape[2] > width:
            raise CalibrationError(
                f"calibration image '{sample.get('name')}' preprocesses to "
                f'{tuple(tensor.shape[1:])}, larger than the export size '
                f'{height}x{width}')
        tensor = F.pad(tensor, (0, width - tensor.shape[2], 0,
                                height - tensor.shape[1]))
        out.append(tensor[None].numpy().astype(np.float32))
    return out


def draw(calib_data: str, count: int, config: str | None = None,
         eval_split: str | None = None, cfg_options: Sequence[str] = ()
         ) -> tuple[list[dict], dict]:
    """The calibration samples and where they came from.

    ``calib_data`` is a split of ``config`` (the first ``count`` samples;
    when it is also the gate's ``eval_split`` the gate evaluates on the
    rest: held out) or a folder of images. Returns ``(samples, record)``,
    ``record['indices']`` the split indices used.
    """
    if count < 1:
        raise CalibrationError(f'--calib-images {count}: give at least 1')
    if calib_data in SPLITS:
        if config is None:
            raise CalibrationError(f"--calib-data {calib_data}: a split needs "
                                   'the config (perception export CONFIG ...)')
        dataset, length = split_samples(config, calib_data, cfg_options)
        if length == 0:
            raise CalibrationError(f'{config}: the {calib_data} split is empty')
        indices = list(range(min(count, length)))
        samples = list(dataset_samples(dataset, indices))
        return samples, dict(source=f'{calib_data} split of '
                             f'{os.path.basename(config)}', indices=indices,
                             images=len(samples))
    samples = folder_samples(calib_data, count)
    return samples, dict(source=f'folder {os.path.basename(os.path.normpath(calib_data))}',
                         indices=[], images=len(samples))
