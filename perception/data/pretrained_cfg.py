""":class:`PretrainedCfg`: the one record of what travels with weights
(timm's ``pretrained_cfg`` habit, plus CT windows, slices and classes).

It is built in one place, :meth:`PretrainedCfg.from_model`, from the model
(architecture), its data preprocessor (mean/std, windows, channel meaning)
and the val pipeline (input size and resize policy); it is stored as a dict
in every checkpoint's ``meta['pretrained_cfg']``, in ``export-backbone``'s
``config.json`` and in deploy manifests. :meth:`PretrainedCfg.preprocess`
turns a source image, CT slice or slab into exactly the tensor the val
pipeline and data preprocessor give, without a Runner.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from perception.data.normalize import normalize_inputs, pad_to_multiple

#: version of the record's layout; bumped when a field changes meaning.
FORMAT_VERSION = 1

#: resize policies: 'stretch' to input_size, 'fit' (keep the aspect, fit
#: inside input_size, pad to ``pad_size_divisor``), or 'none' (any size).
RESIZE_POLICIES = ('stretch', 'fit', 'none')


@dataclass
class PretrainedCfg:
    """What fine-tuning, export and inference need to know about weights.

    Attributes:
        architecture: timm model name of the backbone (``vit_tiny_patch16_224``).
        model_args: keyword arguments that rebuild it (timm names).
        input_size: (C, H, W) the network takes; ``None`` when any size.
        resize: ``'stretch'`` (resize to H x W, aspect not kept), ``'fit'``
            (keep the aspect, fit inside H x W) or ``'none'``.
        pad_size_divisor: the batch is padded (bottom, right, with zeros
            after normalization) to a multiple of this (1: no padding).
        interpolation: resize interpolation (``bilinear``, ``bicubic``...).
        mean, std: per network input channel; on 0..255 for images, on the
            windowed [0, 1] scale for CT; ``None`` when not normalized.
        windows: CT ``[(center, width), ...]``: each source channel through
            each window (channel-major), ``[]`` for camera images.
        slice_offsets: which slices of a series form the source channels,
            relative to the centre slice (``[-1, 0, 1]`` for a 3-slice slab);
            ``[]`` for camera images.
        channel_meaning: a name per network input channel.
        class_names: names of the labels a head predicts (``[]`` when none).
        num_classes: size of the classifier/head output (0: features only).
        extra: anything else a model records (``pretraining``: ``MAE``...).
        format_version: layout version of this record.
    """

    architecture: str = ''
    model_args: dict = field(default_factory=dict)
    input_size: tuple[int, int, int] | None = None
    resize: str = 'stretch'
    interpolation: str = 'bilinear'
    pad_size_divisor: int = 1
    mean: list[float] | None = None
    std: list[float] | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)
    slice_offsets: list[int] = field(default_factory=list)
    channel_meaning: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    num_classes: int = 0
    extra: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f'PretrainedCfg.resize must be one of '
                             f'{RESIZE_POLICIES}, got {self.resize!r}')
        if self.input_size is not None:
            self.input_size = tuple(int(v) for v in self.input_size)
        self.windows = [tuple(float(v) for v in w) for w in self.windows]
        self.slice_offsets = [int(v) for v in self.slice_offsets]
        if self.mean is not None:
            self.mean = [float(v) for v in self.mean]
            self.std = [float(v) for v in self.std or []]
            if len(self.std) != len(self.mean):
                raise ValueError('PretrainedCfg: mean and std need the same '
                                 f'length, got {self.mean} and {self.std}')

    # -- building ---------------------------------------------------------

    @classmethod
    def from_model(cls, model: Any, pipeline: Iterable[Mapping] = (),
                   class_names: Sequence[str] = (),
                   slice_offsets: Sequence[int] = ()) -> PretrainedCfg:
        """The record of ``model`` as trained with ``pipeline``.

        Args:
            model: a model (or a DDP wrapper of one); its
                ``architecture_cfg()`` and its data preprocessor's
                ``preprocessing_cfg()`` are read where present.
            pipeline: the val/test pipeline config (list of transform
                dicts): a ``Resize`` gives input size and interpolation.
            class_names: the dataset's classes.
            slice_offsets: slices of a series that form the channels (CT).
        """
        model = getattr(model, 'module', model)
        values: dict = {}
        for owner, method in ((model, 'architecture_cfg'),
                              (getattr(model, 'data_preprocessor', None),
                               'preprocessing_cfg')):
            found = getattr(owner, method, None)
            if callable(found):
                values.update(found() or {})
        values.update(_pipeline_geometry(pipeline))
        if class_names:
            values['class_names'] = list(class_names)
        if slice_offsets:
            values['slice_offsets'] = list(slice_offsets)
        if values.get('input_size') is None and 'size' in values:
            values['input_size'] = (_channels(values), *values['size'])
        values.pop('size', None)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PretrainedCfg:
        """From :meth:`to_dict` output (unknown keys go to ``extra``)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if v is not None
                  or k in ('mean', 'std', 'input_size')}
        extra = dict(values.get('extra') or {})
        extra.update({k: v for k, v in values.items() if k not in known})
        version = int(values.get('format_version', FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise ValueError(
                f'pretrained_cfg format_version {version} is newer than this '
                f'perception understands ({FORMAT_VERSION}); upgrade '
                'perception-toolkit')
        args = {k: v for k, v in values.items() if k in known}
        args['extra'] = extra
        return cls(**args)

    def to_dict(self) -> dict:
        """A JSON-able dict (what checkpoints and manifests store)."""
        out = asdict(self)
        out['input_size'] = list(self.input_size) if self.input_size else None
        out['windows'] = [list(w) for w in self.windows]
        return out

    # -- channels ---------------------------------------------------------

    @property
    def in_chans(self) -> int:
        """Channels the network takes."""
        if self.input_size is not None:
            return self.input_size[0]
        return _channels(self.to_dict())

    def channel_names(self) -> list[str]:
        """A name per network input channel: ``channel_meaning`` if given,
        else built from slices and windows (``slice-1/C-600W1500``)."""
        if self.channel_meaning:
            return list(self.channel_meaning)
        slices = [f'slice{o:+d}' for o in self.slice_offsets] or (
            ['image'] if not self.windows else ['slice+0'])
        if not self.windows:
            return slices if self.slice_offsets else [
                f'channel{i}' for i in range(self.in_chans)]
        return [f'{s}/C{c:g}W{w:g}' for s in slices for c, w in self.windows]

    # -- conversions ------------------------------------------------------

    def to_timm(self) -> dict:
        """timm's ``pretrained_cfg`` (fields timm knows; mean/std on timm's
        [0, 1] scale: images are divided by 255, windowed CT is already)."""
        out: dict = dict(num_classes=self.num_classes,
                         interpolation=self.interpolation)
        if self.architecture:
            out['architecture'] = self.architecture
        if self.input_size is not None:
            out['input_size'] = list(self.input_size)
        if self.mean is not None:
            scale = 1.0 if self.windows else 255.0
            out['mean'] = [m / scale for m in self.mean]
            out['std'] = [s / scale for s in self.std]
        if self.model_args.get('dynamic_img_size') or self.resize == 'none':
            out['fixed_input_size'] = False
        if self.class_names:
            out['label_names'] = list(self.class_names)
        return out

    # -- preprocessing ----------------------------------------------------

    def preprocess(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """One source image -> the (C, H, W) float tensor the network takes,
        equal to what the val pipeline and data preprocessor give.

        Args:
            image: a camera frame (H, W, 3) uint8, a grey or 16-bit image
                (H, W) / (H, W, 1), a CT slice (H, W) in modality units, or a
                CT slab (K, H, W) of the ``slice_offsets`` slices.
        """
        array = image.numpy() if isinstance(image, torch.Tensor) else \
            np.asarray(image)
        if array.ndim == 2:
            array = array[..., None]
        elif array.ndim == 3 and self.slice_offsets and \
                array.shape[0] == len(self.slice_offsets) and \
                array.shape[-1] != len(self.slice_offsets):
            array = array.transpose(1, 2, 0)  # slab (K, H, W) -> (H, W, K)
        if array.ndim != 3:
            raise ValueError(f'preprocess takes (H, W), (H, W, C) or a slab '
                             f'(K, H, W); got shape {array.shape}')
        if self.resize != 'none' and self.input_size is not None:
            from perception.data.transforms import fit_size, resize_image
            width, height = fit_size(array.shape[:2], self.input_size[:0:-1],
                                     self.resize == 'fit')
            if array.shape[:2] != (height, width):
                array = resize_image(array, width, height, self.interpolation)
        tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(
            2, 0, 1)[None]
        tensor = normalize_inputs(tensor, self.windows, self.mean, self.std)
        return pad_to_multiple(tensor, self.pad_size_divisor)[0]


def _channels(values: Mapping[str, Any]) -> int:
    sources = max(len(values.get('slice_offsets') or []), 1)
    windows = len(values.get('windows') or [])
    if windows:
        return sources * windows
    if values.get('mean') is not None:
        return len(values['mean'])
    return int(values.get('in_chans') or 3)


def _pipeline_geometry(pipeline: Iterable[Mapping]) -> dict:
    """Input size and resize policy from a val/test pipeline config."""
    for step in pipeline or ():
        kind = step.get('type') if isinstance(step, Mapping) else None
        if kind == 'Resize':
            width, height = step['scale']
            return dict(size=(int(height), int(width)),
                        resize='fit' if step.get('keep_ratio') else 'stretch',
                        interpolation=step.get('interpolation', 'bilinear'))
    return {}


def dataset_pipeline(dataset: Mapping | None) -> list:
    """The pipeline config of a dataset config, also inside wrappers: a
    ``ConcatDataset``'s first member (``datasets``) and a wrapped
    ``dataset`` (e.g. a multi-image mix or repeat wrapper)."""
    while dataset:
        if dataset.get('pipeline'):
            return list(dataset['pipeline'])
        members = dataset.get('datasets')
        dataset = members[0] if members else dataset.get('dataset')
    return []


def config_pipeline(cfg: Mapping, splits: Sequence[str] = (
        'test_dataloader', 'val_dataloader')) -> list:
    """The pipeline of the first of ``splits`` whose dataset has one."""
    for split in splits:
        pipeline = dataset_pipeline((cfg.get(split) or {}).get('dataset'))
        if pipeline:
            return pipeline
    return []
