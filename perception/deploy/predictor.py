"""One predictions API over every backend: frames in, DataSamples out, with
``pred_instances`` in the source image's pixels, as the PyTorch
:meth:`Detector.predict` gives them.

    >>> from perception.deploy.predictor import load_predictor
    >>> predictor = load_predictor('bundle/')             # ONNX Runtime
    >>> predictor = load_predictor('work_dirs/det/')      # PyTorch checkpoint
    >>> samples = predictor.predict([frame])              # Frames or arrays
    >>> samples[0].pred_instances.bboxes                  # source pixels

Preprocessing is the model's :class:`~perception.data.PretrainedCfg`
(``preprocess``: the val pipeline's resize, then normalization / CT
windows, then padding), geometry is recorded as the val pipeline's
``Resize`` records it, and post-processing is
:func:`perception.models.heads.postprocess.postprocess_detections` (the
head's own: threshold, class-aware NMS, max detections) with the bundle's
settings, then :func:`perception.data.geometry.boxes_to_source`.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from perception.data.frames import frame_to_sample
from perception.data.geometry import PRED_SPACE_KEY, boxes_to_source, record_geometry, sample_meta
from perception.data.normalize import pad_to_multiple
from perception.deploy.backends import Backend, BackendError
from perception.deploy.manifest import MANIFEST_FILE, MODEL_FILE
from perception.registry import BACKENDS
from perception.sources import Frame
from perception.structures import DataSample

__all__ = ['Predictor', 'load_predictor', 'is_bundle', 'default_backend']

#: meta of a frame's sample that its DataSample keeps (no pixels).
_DROP = ('img', )


class Predictor:
    """Frames -> detections in source pixels, on any :class:`Backend`.

    Args:
        backend: a loaded backend.
        score_thr: lowest score kept (default: the model's own, the
            manifest's ``postprocess.score_thr`` or the head's test_cfg).
    """

    def __init__(self, backend: Backend, score_thr: float | None = None
                 ) -> None:
        self.backend = backend
        self.settings = dict(backend.postprocess)
        self.settings.setdefault('score_thr', None)  # segmentors, classifiers
        if score_thr is not None:
            self.settings['score_thr'] = float(score_thr)

    @property
    def pretrained_cfg(self):
        return self.backend.pretrained_cfg

    @property
    def class_names(self) -> list[str]:
        return self.backend.class_names

    @property
    def task(self) -> str:
        """``detection``, ``segmentation`` or ``classification``."""
        return self.backend.task

    # -- preprocessing ----------------------------------------------------

    def prepare(self, frame: Frame | np.ndarray,
                image: np.ndarray | None = None
                ) -> tuple[torch.Tensor, DataSample]:
        """One frame -> ((C, H, W) network input, its DataSample meta).

        Args:
            frame: a :class:`Frame` (its meta travels: camera, timestamp,
                CT ``series_uid`` / ``slice_index`` / ``affine``) or an
                image array.
            image: the pixels to use instead of ``frame.image``: a CT slab
                (H, W, K) of the ``slice_offsets`` slices around ``frame``.
        """
        if isinstance(frame, Frame):
            results, pixels = frame_to_sample(frame), np.asarray(frame.image)
        else:
            results, pixels = {}, np.asarray(frame)
        if image is not None:  # a slab (H, W, K) around the frame's slice
            pixels = np.asarray(image)
            results['slice_offsets'] = list(self.pretrained_cfg.slice_offsets)
        height, width = pixels.shape[:2]
        results['img_shape'] = results['ori_shape'] = (int(height), int(width))
        new_w, new_h = self.resized_size(height, width)
        record_geometry(results, np.diag([new_w / width, new_h / height, 1.0]),
                        (new_h, new_w))
        tensor = self.pretrained_cfg.preprocess(pixels)
        meta = {k: v for k, v in results.items() if k not in _DROP}
        return tensor, DataSample(metainfo=meta)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(width, height) the val pipeline's ``Resize`` gives an image of
        (height, width) (the PretrainedCfg's resize policy)."""
        cfg = self.pretrained_cfg
        if cfg.resize == 'none' or cfg.input_size is None:
            return width, height
        from perception.data.transforms import fit_size
        return fit_size((height, width), cfg.input_size[:0:-1],
                        cfg.resize == 'fit')

    def collate(self, tensors: Sequence[torch.Tensor],
                samples: Sequence[DataSample]) -> torch.Tensor:
        """Stack inputs into one batch, padded (bottom/right, zeros after
        normalization, as the data preprocessor pads) to the largest, to
        ``pad_size_divisor`` and to the model's fixed height/width."""
        height = max(t.shape[-2] for t in tensors)
        width = max(t.shape[-1] for t in tensors)
        fixed_h, fixed_w = self.backend.input_shape[1:]
        divisor = max(self.pretrained_cfg.pad_size_divisor, 1)
        shape = pad_to_multiple(torch.empty(0, 0, height, width),
                                divisor).shape[-2:]
        shape = (fixed_h or shape[0], fixed_w or shape[1])
        if shape[0] < height or shape[1] < width:
            raise BackendError(
                f"'{self.backend.source}' takes a fixed {shape[0]}x{shape[1]} "
                f'input but the frame preprocesses to {height}x{width}; '
                'export with --dynamic batch,hw or feed frames of the size '
                'it was exported for')
        batch = torch.cat([pad_to_multiple(t[None], 1, shape) for t in tensors])
        for sample in samples:
            sample.set_metainfo(dict(batch_input_shape=tuple(shape)))
        return batch

    # -- post-processing --------------------------------------------------

    def postprocess(self, outputs: Sequence[torch.Tensor],
                    samples: Sequence[DataSample]) -> list[DataSample]:
        """The backend's outputs -> ``samples`` with ``pred_instances`` in
        source pixels (clipped to the source image); for segmentors and
        classifiers ``pred_sem_seg`` / ``pred_score`` and ``pred_label``
        (:mod:`perception.deploy.dense_predict`)."""
        if self.backend.task != 'detection':
            from perception.deploy.dense_predict import dense_predictions
            return dense_predictions(self.backend, outputs, samples)
        if self.settings.get('nms') == 'onnx':
            results = self._nms_outputs(outputs)
        else:
            from perception.models.heads.postprocess import postprocess_detections
            boxes, scores = outputs[0], outputs[1]
            names = self.class_names
            if names and scores.shape[-1] != len(names):
                from perception.deploy.manifest import BundleError
                raise BundleError(
                    f"'{self.backend.source}': the model scores "
                    f'{scores.shape[-1]} classes but its record names '
                    f'{len(names)} ({", ".join(names)}) in '
                    'pretrained_cfg.class_names; the manifest belongs to '
                    'another model: re-export')
            results = postprocess_detections(
                boxes.float(), scores.float(),
                score_thr=float(self.settings['score_thr']),
                nms_iou=float(self.settings['nms_iou']),
                max_per_img=int(self.settings['max_per_img']),
                pre_nms_top_k=int(self.settings.get('pre_nms_top_k', 1000)))
        for sample, instances in zip(samples, results):
            to_source(sample, instances)
        return list(samples)

    def _nms_outputs(self, outputs: Sequence[torch.Tensor]) -> list:
        """In-graph NMS outputs (``perception.deploy.graph.NMS_OUTPUTS``:
        ``num_dets`` (B,), ``det_boxes`` (B, M, 4), ``det_scores`` (B, M),
        ``det_labels`` (B, M), padded with score 0 / label -1) ->
        InstanceData per image above the score threshold (the graph's own
        threshold is already applied: a lower one finds nothing more)."""
        from mmengine.structures import InstanceData
        named = dict(zip(self.backend.output_names, outputs))
        wanted = ('num_dets', 'det_boxes', 'det_scores', 'det_labels')
        if any(name not in named for name in wanted):
            raise BackendError(
                f"'{self.backend.source}': an nms='onnx' model has the "
                f'outputs {list(wanted)}; this one has {sorted(named)}: '
                're-export it')
        results = []
        for i in range(named['det_boxes'].shape[0]):
            scores, labels = named['det_scores'][i], named['det_labels'][i]
            keep = (scores > float(self.settings['score_thr'])) & (labels >= 0)
            keep[int(named['num_dets'].reshape(-1)[i]):] = False
            results.append(InstanceData(
                bboxes=named['det_boxes'][i][keep].float().reshape(-1, 4),
                scores=scores[keep].float(), labels=labels[keep].long()))
        return results

    # -- the call ---------------------------------------------------------

    def predict(self, frames: Sequence[Frame | np.ndarray],
                images: Sequence[np.ndarray | None] | None = None
                ) -> list[DataSample]:
        """Detections of each frame, in its source pixels.

        Args:
            frames: :class:`Frame` s or image arrays (camera (H, W, 3) RGB
                uint8, CT slice (H, W) in HU).
            images: per frame, pixels to use instead (a CT slab (H, W, K)
                of the ``slice_offsets`` slices around it), or None.
        """
        images = list(images) if images is not None else [None] * len(frames)
        prepared = [self.prepare(f, im) for f, im in zip(frames, images)]
        return self.detect([t for t, _ in prepared], [s for _, s in prepared])

    def detect(self, tensors: Sequence[torch.Tensor],
               samples: Sequence[DataSample]) -> list[DataSample]:
        """Preprocessed inputs ((C, H, W) each, as :meth:`prepare` or the
        data preprocessor gives) -> ``samples`` with detections in source
        pixels; batches of a fixed-batch model are filled with zeros."""
        step = self.backend.static_batch or max(len(tensors), 1)
        out: list[DataSample] = []
        for start in range(0, len(tensors), step):
            chunk = list(tensors[start:start + step])
            chunk_samples = list(samples[start:start + step])
            count = len(chunk)
            if self.backend.static_batch:
                chunk += [torch.zeros_like(chunk[0])] * (step - count)
            outputs = self.backend.run(self.collate(chunk, chunk_samples))
            out += self.postprocess([o[:count] for o in outputs],
                                    chunk_samples)
        return out

    def warmup(self, frames: Sequence[Frame | np.ndarray],
               images: Sequence[np.ndarray | None] | None = None,
               runs: int = 2) -> None:
        """Run the model ``runs`` times on ``frames`` as they will be fed
        (allocations, kernel and algorithm choices happen here, not in the
        first timed frames)."""
        images = list(images) if images is not None else [None] * len(frames)
        prepared = [self.prepare(f, im) for f, im in zip(frames, images)]
        tensors = [t for t, _ in prepared]
        if self.backend.static_batch:
            tensors = (tensors * self.backend.static_batch)[
                :self.backend.static_batch]
        batch = self.collate(tensors, [s for _, s in prepared] * len(tensors))
        for _ in range(runs):
            self.backend.run(batch)

    def __call__(self, frames, images=None) -> list[DataSample]:
        return self.predict(frames, images)


def to_source(sample: DataSample, instances: Any) -> DataSample:
    """``instances`` (on the model input) -> ``sample.pred_instances`` in
    source pixels, clipped to ``ori_shape``; as :meth:`Detector.predict`."""
    source = torch.from_numpy(np.asarray(
        boxes_to_source(sample, instances.bboxes), np.float32))
    shape = sample_meta(sample, 'ori_shape') or sample_meta(sample, 'img_shape')
    if shape is not None:
        source[:, 0::2] = source[:, 0::2].clamp(0, shape[1])
        source[:, 1::2] = source[:, 1::2].clamp(0, shape[0])
    instances.bboxes = source
    sample.pred_instances = instances
    sample.set_metainfo({PRED_SPACE_KEY: 'source'})
    return sample


def is_bundle(model: str | os.PathLike) -> bool:
    """Whether ``model`` is an exported model (bundle folder or .onnx)."""
    path = os.fspath(model)
    if os.path.isdir(path):
        return any(os.path.isfile(os.path.join(path, n))
                   for n in (MANIFEST_FILE, MODEL_FILE))
    return path.lower().endswith('.onnx')


def default_backend(model: Any) -> str:
    """``onnxruntime`` for bundles and .onnx files, ``torch`` otherwise."""
    if isinstance(model, torch.nn.Module):
        return 'torch'
    return 'onnxruntime' if is_bundle(model) else 'torch'


def load_predictor(model: Any, backend: str | None = None,
                   score_thr: float | None = None, threads: int = 0,
                   **options: Any) -> Predictor:
    """A :class:`Predictor` for a checkpoint, work dir, bundle or .onnx.

    Args:
        model: a checkpoint (``.pth``) or work dir (PyTorch), a bundle
            folder or an ``.onnx`` file (ONNX Runtime).
        backend: a ``BACKENDS`` name (default: :func:`default_backend`).
        score_thr: override the model's score threshold.
        threads: intra-op threads (0: the backend's default).
        **options: more backend arguments (``providers``, ``io_binding``,
            ``trust_checkpoint``...).

    Raises:
        BackendError: unknown backend, or a model the backend cannot run.
        perception.deploy.manifest.BundleError: a corrupt or mismatched
            bundle.
    """
    name = backend or default_backend(model)
    BACKENDS.import_from_location()
    cls = BACKENDS.get(name)
    if cls is None:
        known = ', '.join(sorted(BACKENDS.module_dict))
        raise BackendError(f"unknown backend '{name}'; available: {known}")
    if not isinstance(model, torch.nn.Module):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise BackendError(f"model '{path}' not found; pass a checkpoint, "
                               'a work dir, a bundle folder or an .onnx file')
        if name == 'torch' and is_bundle(path):
            raise BackendError(
                f"'{path}' is an exported model; the torch backend runs "
                'checkpoints: use --backend onnxruntime')
        if name != 'torch' and not is_bundle(path):
            raise BackendError(
                f"'{path}' is a checkpoint; export it first (`perception "
                'export CONFIG CHECKPOINT --format onnx --out DIR`) and pass '
                'DIR, or use --backend torch')
    return Predictor(cls(model, threads=threads, **options),
                     score_thr=score_thr)
