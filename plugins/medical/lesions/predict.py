"""Run a 2D / 2.5D detector on every slice (or slab) of a volume.

The same path as inference on a source: slices become frames
(:class:`perception.sources.Frame`, meta ``series_uid``, ``slice_index``,
``affine``, ``path``), slabs of adjacent slices samples
(:func:`perception.data.frames.slab_to_sample`), then the test pipeline,
the model's data preprocessor and ``predict`` (boxes in source pixels).
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from perception.data.frames import slab_to_sample
from perception.sources import Frame


def volume_frames(volume) -> list[Frame]:
    """The slices of a :class:`~perception_medical.dicom.volume.Volume` as
    frames, as the ``dicom`` source yields them."""
    uid = volume.meta.get('series_uid') or 'volume'
    frames = []
    for z in range(len(volume.array)):
        meta = dict(series_uid=uid, slice_index=z, affine=volume.affine,
                    clock='index', spacing=volume.spacing,
                    path=volume.files[z] if z < len(volume.files) else None,
                    modality=volume.meta.get('modality'))
        frames.append(Frame(volume.array[z], z, z, uid, meta))
    return frames


def build_pipeline(pipeline: Sequence) -> list[Callable]:
    """Transforms from configs (``LoadCTSlices`` dropped: frames carry
    their pixels), ``PackInputs`` appended when missing."""
    from perception.registry import TRANSFORMS
    out = []
    for t in pipeline:
        if isinstance(t, dict):
            if t.get('type') == 'LoadCTSlices':
                continue
            t = TRANSFORMS.build(t)
        out.append(t)
    if not out or type(out[-1]).__name__ != 'PackInputs':
        from perception.data.transforms import PackInputs
        out.append(PackInputs())
    return out


def iter_predictions(model, frames: Sequence[Frame], pipeline: Sequence = (),
                     slice_offsets: Sequence[int] = (0, ),
                     batch_size: int = 4) -> Iterator[tuple[Frame, object]]:
    """``(frame, DataSample)`` for every slice of one series' ``frames``
    (in slice order): the model's predictions on the slab
    ``slice_offsets`` around it (boxes in source pixels, ``pred_space``
    'source', as the core Detector gives)."""
    import torch
    from mmengine.dataset import pseudo_collate
    transforms = build_pipeline(pipeline)
    model.eval()
    batch: list[tuple[Frame, dict]] = []

    def run(items):
        data = pseudo_collate([packed for _, packed in items])
        with torch.no_grad():
            samples = model.test_step(data)
        return zip([f for f, _ in items], samples)

    for k, frame in enumerate(frames):
        results = slab_to_sample(frames, slice_offsets, centre=k)
        results['img'] = results['img'].astype(np.float32)
        for t in transforms:
            results = t(results)
        batch.append((frame, results))
        if len(batch) == batch_size:
            yield from run(batch)
            batch = []
    if batch:
        yield from run(batch)


def predict_volume(model, volume, pipeline: Sequence = (),
                   slice_offsets: Sequence[int] = (0, ), batch_size: int = 4,
                   class_names: Sequence[str] = ('lesion', ),
                   min_score: float = 0.3, **merge) -> list:
    """The findings of a detector on a volume.

    Args:
        model: a detector (``test_step`` -> DataSamples with
            ``pred_instances`` in source pixels), e.g. the core
            ``Detector``.
        volume: a :class:`~perception_medical.dicom.volume.Volume`
            (``load_series`` or ``read_metaimage``).
        pipeline: the test pipeline after loading (configs or transforms).
        slice_offsets: the slab the model takes (its PretrainedCfg's).
        min_score: slice boxes below it are not merged.
        **merge: ``iou_thr``, ``max_gap`` of
            :func:`~perception_medical.lesions.findings.merge_detections`.

    Returns:
        list of :class:`~perception_medical.lesions.findings.Finding`.
    """
    from .findings import merge_detections
    from .postprocess import sample_detections
    dets = []
    for frame, sample in iter_predictions(model, volume_frames(volume),
                                          pipeline, slice_offsets,
                                          batch_size):
        dets += sample_detections(frame, sample, min_score)
    uid = volume.meta.get('series_uid') or 'volume'
    return merge_detections(dets, volume.affine, uid, class_names, **merge)
