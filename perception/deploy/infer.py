"""``perception infer MODEL SOURCE``: a detector, segmentor or classifier
on anything :func:`perception.sources.open_source` opens (video file, image
folder, MJPEG/RTSP stream, ROS bag, rig, DICOM series), on ONNX Runtime or
PyTorch.

Writes into ``out``:

* ``detections.json``: COCO-style (images with frame index, stream time
  and its clock, annotations in source pixels; for CT slices the box
  centres in LPS mm), the source's events (reconnects, drops) and the
  summary;
* pictures of frames with their boxes (image folders, CT slices windowed
  for display) or one annotated MP4 per camera for videos, streams and bags
  (as many frames as were read);
* whatever the domain post-processors registered in ``POSTPROCESSORS``
  write (e.g. the medical plugin's 3D lesion findings of a detector, or
  the DICOM SEG of a segmentor, on a DICOM series), their summaries in the
  JSON and the run's summary (``postprocessors``), their files in its
  ``files``.
* for a segmentor or classifier, ``predictions.json`` with a label PNG per
  frame under ``masks/`` (:mod:`perception.deploy.dense_writers`) instead
  of the detections, and pictures of the class map or the top-1 class.

The post-processor contract (the core never imports a plugin; the class
is found in the registry)::

    cls.tasks                  # tasks it takes, e.g. ('detection', );
                               # absent: ('detection', )
    cls.applies(first_frame)   # whether it takes frames like the first
    post = cls(out_dir, class_names)
    post.add(frame, sample)    # every frame: the predicted DataSample
                               # (boxes / pred_sem_seg in source pixels)
    post.close() -> dict       # writes; a summary, its paths in 'files'

Every registered class whose ``tasks`` holds the predictor's task
(:data:`perception.deploy.tasks.TASKS`) and that ``applies`` to the
first frame is started.

A stream goes on through reconnects (each event logged and listed); Ctrl-C
ends the run cleanly, with everything read so far written.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from perception.data.frames import is_ct_frame
from perception.deploy.dense_writers import draw_prediction, picture_name, predictions_writer
from perception.deploy.interrupts import CtrlC
from perception.deploy.predictor import Predictor, load_predictor
from perception.deploy.writers import DETECTIONS_FILE, MediaWriter, redact_uri
from perception.sources import Frame, FrameSet, SourceError, open_source

__all__ = ['infer', 'InferRun', 'slabs', 'DETECTIONS_FILE']

logger = logging.getLogger('perception')

#: clocks of sources that are played as videos (an MP4 per camera).
VIDEO_CLOCKS = ('pts', 'arrival', 'header')


def slabs(frames: Iterable[Frame], offsets: Sequence[int]
          ) -> Iterator[tuple[Frame, np.ndarray | None]]:
    """(centre frame, slab (H, W, K)) for each slice of each series in
    stream order, the slices at ``centre + offset`` stacked as channels
    (the edge slice repeated past either end of its series, as the CT
    datasets stack 2.5D inputs); ``(frame, None)`` when ``offsets`` is
    empty or a frame is not a CT slice. Holds only the slices a slab
    needs."""
    offsets = [int(o) for o in offsets]
    if not offsets:
        for frame in frames:
            yield frame, None
        return
    lo, hi = min(offsets), max(offsets)
    buffer: list[Frame] = []
    state = dict(base=0, centre=0, uid=None)

    def ready(final: bool) -> Iterator[tuple[Frame, np.ndarray]]:
        while state['centre'] - state['base'] < len(buffer) and (
                final or state['centre'] + hi < state['base'] + len(buffer)):
            last = state['base'] + len(buffer) - 1
            picked = [buffer[min(max(state['centre'] + o, 0), last)
                             - state['base']] for o in offsets]
            yield buffer[state['centre'] - state['base']], np.stack(
                [np.asarray(f.image, np.float32) for f in picked], axis=-1)
            state['centre'] += 1
            drop = max(state['centre'] + lo, 0) - state['base']
            if drop > 0:
                del buffer[:drop]
                state['base'] += drop

    for frame in frames:
        if not is_ct_frame(frame):
            yield frame, None
            continue
        uid = frame.meta.get('series_uid')
        if uid != state['uid']:
            yield from ready(True)
            buffer.clear()
            state.update(base=0, centre=0, uid=uid)
        buffer.append(frame)
        yield from ready(False)
    yield from ready(True)


def _frames(source: Iterable[Frame | FrameSet]) -> Iterator[Frame]:
    for item in source:
        if isinstance(item, FrameSet):
            yield from item.frames.values()
        else:
            yield item


def _display(frame: Frame, windows: Sequence) -> np.ndarray:
    """RGB uint8 picture of a frame: CT windowed with the model's first
    window (or stretched), 16-bit stretched, grey repeated."""
    image = np.asarray(frame.image)
    if image.dtype == np.uint8:
        return image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)
    values = image.astype(np.float32)
    if values.ndim == 3:
        values = values[..., 0]
    if windows:
        from perception.data.windowing import apply_window
        unit = apply_window(values, *windows[0])
    else:
        lo, hi = float(values.min()), float(values.max())
        unit = (values - lo) / max(hi - lo, 1e-6)
    grey = (np.clip(unit, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


class InferRun:
    """One ``infer`` run: source -> predictor -> writers (see the module
    docstring). Use :func:`infer`."""

    def __init__(self, predictor: Predictor, out: str, batch: int = 1,
                 pictures: bool = True, videos: bool = True,
                 max_frames: int | None = None) -> None:
        self.predictor = predictor
        self.out = out
        self.batch = max(int(batch), 1)
        self.pictures, self.videos = pictures, videos
        self.max_frames = max_frames
        self.media = MediaWriter()
        self.postprocessors: list[Any] = []
        self.frames = self.detections = 0
        self._events_seen = 0

    def _start_postprocessors(self, first: Frame) -> None:
        """Start every registered post-processor for the predictor's task
        that applies to frames like ``first`` (the module docstring)."""
        from perception.plugins import load_plugins
        from perception.registry import POSTPROCESSORS
        load_plugins()
        POSTPROCESSORS.import_from_location()
        task = self.predictor.task
        for name, cls in sorted(POSTPROCESSORS.module_dict.items()):
            # the contract before ``tasks``: post-processors of detections
            if task in getattr(cls, 'tasks', ('detection', )) and \
                    cls.applies(first):
                logger.info('infer: post-processing with %s', name)
                self.postprocessors.append(cls(
                    out_dir=Path(self.out),
                    class_names=list(self.predictor.class_names)))

    def _log_events(self, source: Any) -> None:
        events = list(source.events)
        if len(events) < self._events_seen:  # the source trimmed its list
            self._events_seen = 0
        for event in events[self._events_seen:]:
            logger.warning('infer: source %s: %s', event.kind,
                           redact_uri(event.detail))
        self._events_seen = len(events)

    def _emit(self, frame: Frame, sample: Any) -> None:
        """Record and draw one predicted frame."""
        self.frames += 1
        self.detections += self.json.add(frame, sample)
        for post in self.postprocessors:
            post.add(frame, sample)
        classes = self.predictor.class_names
        windows = self.predictor.pretrained_cfg.windows

        def draw() -> np.ndarray:
            return draw_prediction(_display(frame, windows), sample, classes)
        camera = ''.join(c if c.isalnum() or c in '-_' else '_'
                         for c in str(frame.camera)) or 'cam0'
        if frame.meta.get('clock') in VIDEO_CLOCKS and not is_ct_frame(frame):
            if self.videos:
                self.media.video_frame(os.path.join(self.out, f'{camera}.mp4'),
                                       draw, frame.timestamp_ns)
        elif self.pictures:
            name = picture_name(frame)
            folder = os.path.join(self.out, 'pictures')
            os.makedirs(folder, exist_ok=True)
            self.media.picture(os.path.join(folder, f'{name}.jpg'), draw)

    def _flush(self, pending: list, ctrl_c: CtrlC) -> None:
        """Predict the pending frames and record them; Ctrl-C waits until
        every one of them is in the JSON and queued for its MP4."""
        if not pending:
            return
        frames = [f for f, _ in pending]
        samples = self.predictor.predict(frames, [s for _, s in pending])
        with ctrl_c.writing():
            for frame, sample in zip(frames, samples):
                self._emit(frame, sample)
            pending.clear()

    def run(self, source: Any, info: dict) -> dict:
        """Process every frame of ``source`` (an open FrameSource).

        Ctrl-C ends the run: every frame already read from the source (the
        batch waiting for the model included) is predicted and written, to
        the JSON and the MP4 alike; frames still buffered inside the source
        are not read. A second Ctrl-C is ignored while the files are
        written."""
        with CtrlC() as ctrl_c:
            return self._run(source, info, ctrl_c)

    def _run(self, source: Any, info: dict, ctrl_c: CtrlC) -> dict:
        from perception.progress import progress
        os.makedirs(self.out, exist_ok=True)
        self.json = predictions_writer(self.out, self.predictor.task,
                                       self.predictor.class_names, info)
        start = time.perf_counter()
        interrupted, error = False, None
        pending: list = []
        total = len(getattr(source, 'paths', None) or []) or None
        bar = progress(total=total, desc='infer', unit='frame')
        try:
            offsets = self.predictor.pretrained_cfg.slice_offsets
            for frame, slab in slabs(_frames(source), offsets):
                first = self.frames + len(pending) == 0
                pending.append((frame, slab))
                if first:
                    if is_ct_frame(frame):  # folders named after patients
                        self.json.info['source'] = 'DICOM series'
                    self._start_postprocessors(frame)
                    self.predictor.warmup([frame], [slab])
                    start = time.perf_counter()  # frames/s without warm-up
                if len(pending) >= self.batch:
                    done = len(pending)
                    self._flush(pending, ctrl_c)
                    bar.update(done)
                    bar.set_postfix(f'{self.detections} detections')
                self._log_events(source)
                if self.max_frames and self.frames + len(pending) >= \
                        self.max_frames:
                    break
            self._flush(pending, ctrl_c)
        except KeyboardInterrupt:
            interrupted = True
            logger.warning('infer: interrupted; writing what was read')
        except Exception as exc:  # written up below, then raised
            error = exc
        finally:
            with ctrl_c.ignored():  # a second Ctrl-C must not cut the files
                if interrupted and pending:  # read before the signal
                    try:
                        self._flush(pending, ctrl_c)
                    except Exception as exc:  # noqa: BLE001 - raised below
                        error = exc
                bar.close()
                summary = self._finish(source, start, interrupted or
                                       ctrl_c.interrupted, error)
        if error is not None:
            from perception.errors import is_user_error
            if is_user_error(error) and redact_uri(str(error)) != str(error):
                raise SourceError(redact_uri(str(error))) from None
            raise error
        return summary

    def _finish(self, source: Any, start: float, interrupted: bool,
                error: BaseException | None) -> dict:
        seconds = time.perf_counter() - start
        self._log_events(source)
        media_error = None
        try:
            videos = self.media.close()
        except Exception as exc:  # noqa: BLE001 - reported after the JSON
            videos, media_error = {}, exc
        post = {}
        for p in self.postprocessors:
            post[type(p).__name__] = p.close()
        events = [dict(kind=e.kind, time=e.time, detail=redact_uri(e.detail),
                       count=e.count) for e in source.events]
        written = sorted(set(self.media.written))
        summary = dict(frames=self.frames, detections=self.detections,
                       seconds=round(seconds, 3),
                       fps=round(self.frames / max(seconds, 1e-9), 2),
                       interrupted=interrupted,
                       error=redact_uri(str(error)) if error else None,
                       videos={os.path.basename(k): v
                               for k, v in videos.items()},
                       pictures=sum(1 for w in written if w.endswith('.jpg')),
                       postprocessors=post,
                       source_stats={k: v for k, v in source.stats.items()
                                     if isinstance(v, (int, float))})
        try:
            json_path = self.json.write(events, summary)
        finally:
            self.json.close()
        summary['files'] = [json_path] + [w for w in written
                                          if w.endswith('.mp4')] + [
            str(f) for value in post.values() if isinstance(value, dict)
            for f in value.get('files', ())]
        if media_error is not None:
            raise media_error
        return summary


def infer(model: Any, source: str, out: str = 'work_dirs/infer',
          backend: str | None = None, score_thr: float | None = None,
          threads: int = 0, batch: int = 1, pictures: bool = True,
          videos: bool = True, max_frames: int | None = None,
          source_options: dict | None = None, **backend_options: Any
          ) -> dict:
    """Run a detector, segmentor or classifier on a source and write its
    predictions, plus what the plugins' post-processors for that task add
    (3D findings, DICOM SEG; see the module docstring).

    Args:
        model: checkpoint / work dir (PyTorch), bundle folder or ``.onnx``.
        source: anything :func:`open_source` accepts.
        out: output folder.
        backend: ``onnxruntime`` or ``torch`` (default from ``model``).
        score_thr: lowest score kept (default: the model's).
        threads: intra-op threads (0: the backend's default).
        batch: frames per model call.
        pictures, videos: write pictures / annotated MP4s.
        max_frames: stop after this many frames.
        source_options: passed to :func:`open_source` (``timeout_s``...).

    Returns:
        the summary: frames, detections, seconds, fps, interrupted, videos
        (name -> frames), pictures, postprocessors, files.
    """
    predictor = load_predictor(model, backend, score_thr=score_thr,
                               threads=threads, **backend_options)
    from perception.errors import is_user_error
    try:
        opened = open_source(source, **dict(source_options or {}))
    except Exception as exc:  # the opener's message may name credentials
        if not is_user_error(exc) or redact_uri(str(exc)) == str(exc):
            raise
        raise SourceError(redact_uri(str(exc))) from None
    with opened:
        info = dict(model=os.path.basename(os.path.normpath(os.fspath(model)))
                    if not hasattr(model, 'forward') else type(model).__name__,
                    source=redact_uri(source),
                    class_names=list(predictor.class_names),
                    score_thr=predictor.settings['score_thr'],
                    backend=predictor.backend.describe(),
                    created=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
        run = InferRun(predictor, out, batch=batch, pictures=pictures,
                       videos=videos, max_frames=max_frames)
        return run.run(opened, info)
