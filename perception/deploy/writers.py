"""What ``perception infer`` writes: detections as COCO-style JSON, pictures
of frames with their boxes, annotated MP4s. Pictures and videos are drawn
and encoded on a worker thread (bounded queue), so decoding and the model
are not held up by them; :meth:`close` drains the queue, so an interrupted
run still leaves complete, readable files.
"""
from __future__ import annotations

import json
import os
import queue
import threading
from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np

from perception.data.geometry import points_to_lps, sample_meta
from perception.redact import redact_text

__all__ = ['DetectionsJson', 'MediaWriter', 'VideoWriter', 'redact_uri',
           'detections_of', 'DETECTIONS_FILE']

#: the JSON of a detector's run of ``perception infer``.
DETECTIONS_FILE = 'detections.json'

def redact_uri(text: str) -> str:
    """Credentials in URLs inside ``text`` replaced by ``***``
    (``rtsp://user:pw@host`` -> ``rtsp://***@host``): the one helper,
    :func:`perception.redact.redact_text`."""
    return redact_text(text)


def detections_of(sample: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (N, 4) float32, labels (N,) int64, scores (N,) float32) of a
    predicted sample, as numpy."""
    inst = sample.pred_instances
    return (inst.bboxes.detach().cpu().numpy().reshape(-1, 4),
            inst.labels.detach().cpu().numpy().astype(np.int64),
            inst.scores.detach().cpu().numpy().astype(np.float32))


class DetectionsJson:
    """Collects detections and writes one COCO-style JSON file.

    ``images`` get ``id``, ``width``, ``height``, ``frame_index``,
    ``timestamp_ns``, ``clock``, ``camera`` and the image file's name (not
    its folder); CT slices instead ``series_uid`` and ``slice_index`` (no
    file names: DICOM folders are often named after patients).
    ``annotations`` are COCO's (``bbox`` xywh in source pixels, ``score``,
    ``category_id`` = label), plus for CT ``center_lps`` (mm, the box centre
    through the slice's ``affine``). ``events`` lists the source's events
    (reconnects, drops...), ``summary`` the run's.
    """

    def __init__(self, path: str, class_names: Sequence[str],
                 info: dict) -> None:
        self.path = path
        self.info = dict(info)
        self.categories = [dict(id=i, name=n) for i, n in enumerate(class_names)]
        # Records go to spool files as they come (one JSON line each), so a
        # stream that runs for hours keeps flat memory; write() assembles.
        self._spools = {key: open(f'{path}.{key}.spool', 'w+', encoding='utf-8')
                        for key in ('images', 'annotations')}
        self.num_images = 0
        self.num_annotations = 0

    def _spool(self, key: str, record: dict) -> None:
        self._spools[key].write(json.dumps(record, separators=(',', ':')))
        self._spools[key].write('\n')

    def add(self, frame: Any, sample: Any) -> int:
        """Record one frame's detections; returns how many."""
        record, ct = self.image_record(frame, sample)
        self._spool('images', record)
        self.num_images += 1
        return self._detections(sample, record['id'], ct)

    def image_record(self, frame: Any, sample: Any) -> tuple[dict, bool]:
        """(the ``images`` entry of the next frame, whether it is a CT
        slice): sizes, stream time, camera, file name (not its folder)."""
        height, width = sample_meta(sample, 'ori_shape')
        record: dict[str, Any] = dict(id=self.num_images, width=int(width),
                                      height=int(height))
        ct = sample_meta(sample, 'series_uid') is not None
        if ct:
            record.update(series_uid=str(sample_meta(sample, 'series_uid')),
                          slice_index=int(sample_meta(sample, 'slice_index')))
        else:
            path = sample_meta(sample, 'img_path')
            if path:
                record['file_name'] = os.path.basename(str(path))
            record.update(camera=str(frame.camera),
                          frame_index=int(frame.index),
                          timestamp_ns=int(frame.timestamp_ns),
                          clock=str(frame.meta.get('clock', '')))
        return record, ct

    def _detections(self, sample: Any, image_id: int, ct: bool) -> int:
        boxes, labels, scores = detections_of(sample)
        centres = None
        if ct and len(boxes) and sample_meta(sample, 'affine') is not None:
            middle = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2,
                               (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
            centres = points_to_lps(sample, middle, space='source')
        for k, (box, label, score) in enumerate(zip(boxes, labels, scores)):
            x1, y1, x2, y2 = (float(v) for v in box)
            ann = dict(id=self.num_annotations, image_id=image_id,
                       category_id=int(label), score=round(float(score), 5),
                       bbox=[round(x1, 3), round(y1, 3), round(x2 - x1, 3),
                             round(y2 - y1, 3)],
                       area=round((x2 - x1) * (y2 - y1), 2))
            if centres is not None:
                ann['center_lps'] = [round(float(v), 3) for v in centres[k]]
            self._spool('annotations', ann)
            self.num_annotations += 1
        return len(boxes)

    def write(self, events: Sequence[dict] = (), summary: dict | None = None
              ) -> str:
        """Write the file (atomically: a reader never sees half of it)."""
        tmp = f'{self.path}.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write('{\n"info": ' + json.dumps(self.info))
            f.write(',\n"categories": ' + json.dumps(self.categories))
            for key in ('images', 'annotations'):
                spool = self._spools[key]
                spool.flush()
                spool.seek(0)
                f.write(f',\n"{key}": [')
                for n, line in enumerate(spool):
                    f.write((',\n' if n else '\n') + line.rstrip('\n'))
                f.write('\n]')
                spool.seek(0, os.SEEK_END)
            f.write(',\n"events": ' + json.dumps(list(events), indent=1))
            f.write(',\n"summary": ' + json.dumps(summary or {}, indent=1))
            f.write('\n}\n')
        os.replace(tmp, self.path)
        return self.path

    def close(self) -> None:
        """Remove the spool files (after the last :meth:`write`)."""
        for key, spool in self._spools.items():
            spool.close()
            try:
                os.remove(f'{self.path}.{key}.spool')
            except FileNotFoundError:
                pass


class VideoWriter:
    """An MP4 of RGB frames with their stream times (H.264 through PyAV
    when installed, else OpenCV's mp4v): one output frame per input frame,
    presentation times from ``timestamp_ns`` (kept increasing)."""

    def __init__(self, path: str, fps: float = 30.0) -> None:
        self.path, self.fps = path, float(fps)
        self.frames = 0
        self._container = self._stream = self._cv = None
        self._first_ns: int | None = None
        self._last_pts = -1

    def _open(self, height: int, width: int) -> None:
        try:
            import av
        except ImportError:
            import cv2
            self._cv = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(
                *'mp4v'), self.fps, (width, height))
            return
        self._container = av.open(self.path, 'w')
        stream = self._container.add_stream(
            'libx264', rate=Fraction(self.fps).limit_denominator(1000))
        stream.width, stream.height = width, height
        stream.pix_fmt = 'yuv420p'
        stream.time_base = Fraction(1, 1000)
        stream.options = {'preset': 'ultrafast', 'crf': '23'}
        self._stream = stream

    def write(self, image: np.ndarray, timestamp_ns: int) -> None:
        """Append one RGB uint8 (H, W, 3) frame (odd sizes padded by one
        pixel: H.264 in yuv420p needs even sizes)."""
        height, width = image.shape[:2]
        if height % 2 or width % 2:
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)),
                           mode='edge')
        if self._container is None and self._cv is None:
            self._open(*image.shape[:2])
        self.frames += 1
        if self._cv is not None:
            self._cv.write(np.ascontiguousarray(image[..., ::-1]))
            return
        import av
        if self._first_ns is None:
            self._first_ns = int(timestamp_ns)
        pts = max(int((int(timestamp_ns) - self._first_ns) // 1_000_000),
                  self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image),
                                           format='rgb24')
        frame.pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._cv is not None:
            self._cv.release()
        elif self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        self._container = self._cv = None


class MediaWriter:
    """Draws and writes pictures and videos on a worker thread.

    ``submit(job)`` queues a callable (blocking when ``max_queue`` jobs are
    waiting, so memory stays bounded); :meth:`close` runs what is queued,
    closes every video and re-raises the first error a job hit.
    """

    def __init__(self, max_queue: int = 16) -> None:
        self.videos: dict[str, VideoWriter] = {}
        self.written: list[str] = []
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, daemon=True,
                                        name='perception-infer-writer')
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # reported by close()
                    self._error = exc

    def submit(self, job: Callable[[], None]) -> None:
        self._queue.put(job)

    def picture(self, path: str, draw: Callable[[], np.ndarray]) -> None:
        """Queue ``draw()`` (an RGB uint8 array) to be written to ``path``."""
        def job() -> None:
            from PIL import Image
            Image.fromarray(draw()).save(path)
            self.written.append(path)
        self.submit(job)

    def video_frame(self, path: str, draw: Callable[[], np.ndarray],
                    timestamp_ns: int, fps: float = 30.0) -> None:
        """Queue ``draw()`` as the next frame of the MP4 at ``path``."""
        def job() -> None:
            if path not in self.videos:
                self.videos[path] = VideoWriter(path, fps)
            self.videos[path].write(draw(), timestamp_ns)
        self.submit(job)

    def close(self) -> dict[str, int]:
        """Finish every queued job and video; returns path -> frames."""
        self._queue.put(None)
        self._thread.join()
        frames = {}
        for path, video in self.videos.items():
            video.close()
            frames[path] = video.frames
            self.written.append(path)
        if self._error is not None:
            raise self._error
        return frames
