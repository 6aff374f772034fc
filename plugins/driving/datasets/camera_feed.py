"""``CameraFeedDataset``: unlabeled camera frames for masked pretraining.

Frames are read once from any ``open_source`` URI (video, image folder,
bag, rig, a bounded stream), thinned by ``stride`` and near-duplicate
skipping, and either cached to disk as image files with a manifest, so
later epochs and runs read small images instead of decoding video again,
or (``cache=False``) held in memory as the RGB arrays the source gave. The
cache key covers the source (path, size and modification time) and every
option that changes which frames are kept. Samples are made by
:func:`perception.data.frames.frame_to_sample`, as inference makes them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any, Sequence

import numpy as np
from mmengine.logging import print_log

from perception.data import BadSampleError, PerceptionDataset
from perception.data.cache import cache_dir as core_cache_dir
from perception.data.frames import frame_to_sample
from perception.data.image_io import ImageReadError, read_image, to_rgb8
from perception.registry import DATASETS
from perception.sources import Frame, FrameSet, open_source

MANIFEST = 'manifest.json'


def default_cache_dir() -> str:
    """``$PERCEPTION_CACHE/frames`` (default ``~/.cache/perception``):
    :func:`perception.data.cache.cache_dir` of ``'frames'``."""
    return core_cache_dir('frames')


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """32x32 grey float32 in [0, 255], for near-duplicate tests."""
    import cv2
    grey = image.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    if image.dtype == np.uint16:
        grey /= 257.0
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)


def _source_signature(uri: str) -> list:
    if '://' in uri or not os.path.exists(uri):
        return [uri]
    stat = os.stat(uri)
    entries = [os.path.abspath(uri), stat.st_size, stat.st_mtime_ns]
    if os.path.isdir(uri):  # folders: their listing and sizes
        for name in sorted(os.listdir(uri)):
            st = os.stat(os.path.join(uri, name))
            entries += [name, st.st_size, st.st_mtime_ns]
    return entries


def _safe(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '-_.' else '_'
                   for c in name).strip('_') or 'cam'


@DATASETS.register_module()
class CameraFeedDataset(PerceptionDataset):
    """Unlabeled frames from camera sources, cached as images or held in
    memory.

    Each item (before the pipeline) is a results dict with ``img`` (RGB
    uint8 (H, W, 3); 16-bit frames by the rule of
    :mod:`perception.data.image_io`), ``img_path`` (the cached file; without
    a cache the source file where there is one), ``img_shape``,
    ``ori_shape``, ``camera`` (the source's camera name: a rig's camera,
    the video's or image folder's name), ``timestamp_ns``, ``source``,
    ``frame_index`` and ``intrinsics`` where the source has them.

    Args:
        source: one URI or a list of URIs for ``open_source``; relative
            paths are relative to ``data_root`` when given. ``sources`` is
            accepted as another name for it.
        cache_dir: where decoded frames are kept (default
            :func:`default_cache_dir`).
        cache: ``False`` keeps the kept frames in memory as RGB arrays
            (no files written, no PNG/BGR round trip; decoded again by
            every new dataset); ``True`` (default) caches them on disk.
        source_options: keyword options for ``open_source``.
        stride: keep every ``stride``-th frame of each camera.
        dedup_threshold: skip a frame whose 32x32 grey thumbnail differs
            from the camera's last kept frame by less than this mean
            absolute difference (0-255 scale); 0 keeps every frame.
        max_frames: stop after this many kept frames per source (required
            for live ``http``/``rtsp`` streams).
        image_format: 'png' (lossless) or 'jpg' for the cache.
        pipeline: transforms (configs or callables).
    """

    def __init__(self, source: str | Sequence[str] | None = None,
                 cache_dir: str | None = None,
                 source_options: dict | None = None, stride: int = 1,
                 dedup_threshold: float = 0.0, max_frames: int | None = None,
                 image_format: str = 'png', pipeline: Sequence = (),
                 sources: str | Sequence[str] | None = None,
                 cache: bool = True, **kwargs) -> None:
        if source is not None and sources is not None:
            raise ValueError('CameraFeedDataset: give source or sources, '
                             'not both')
        source = source if source is not None else sources
        self.sources = ([source] if isinstance(source, str)
                        else list(source or []))
        if not self.sources:
            raise ValueError('CameraFeedDataset: source is empty; give a '
                             'video, image folder, bag, rig or stream URI')
        if int(stride) < 1:
            raise ValueError(f'CameraFeedDataset: stride must be >= 1, got '
                             f'{stride}')
        if image_format not in ('png', 'jpg'):
            raise ValueError("CameraFeedDataset: image_format must be 'png' "
                             f"or 'jpg', got {image_format!r}")
        if not cache and cache_dir:
            raise ValueError('CameraFeedDataset: cache=False keeps frames in '
                             f'memory, but cache_dir={cache_dir!r} was given;'
                             ' drop one of them')
        self.cache = bool(cache)
        self.cache_dir = (cache_dir or default_cache_dir()) if cache else None
        self._frames: list[np.ndarray] = []
        self.source_options = dict(source_options or {})
        self.stride, self.dedup_threshold = int(stride), float(dedup_threshold)
        self.max_frames, self.image_format = max_frames, image_format
        self.skipped_duplicates = 0
        super().__init__(pipeline=list(pipeline), **kwargs)

    # -- building the list -------------------------------------------------
    def _resolve(self, uri: str) -> str:
        if '://' in uri or os.path.isabs(uri) or not self.data_root:
            return uri
        return os.path.join(self.data_root, uri)

    def _cache_key(self, uri: str) -> str:
        blob = json.dumps([_source_signature(uri), self.source_options,
                           self.stride, self.dedup_threshold, self.max_frames,
                           self.image_format], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def load_data_list(self) -> list[dict]:
        data = []
        for uri in map(self._resolve, self.sources):
            if '://' in uri and not self.max_frames:
                raise ValueError(f'CameraFeedDataset: {uri} is a live stream;'
                                 ' set max_frames to bound what is cached')
            if not self.cache:
                data.extend(self._read_frames(uri))
                continue
            folder = os.path.join(self.cache_dir, self._cache_key(uri))
            manifest = os.path.join(folder, MANIFEST)
            if not os.path.isfile(manifest):
                self._build_cache(uri, folder)
            with open(manifest, encoding='utf-8') as f:
                entries = json.load(f)
            for entry in entries['frames']:
                data.append(dict(entry, source=uri, img_path=os.path.join(
                    folder, entry['file'])))
            self.skipped_duplicates += entries.get('skipped_duplicates', 0)
        if not data:
            raise ValueError(f'CameraFeedDataset: no frames in {self.sources}'
                             ' (after stride and near-duplicate skipping)')
        return data

    def _kept_frames(self, uri: str, counts: dict):
        """Frames of ``uri`` after stride, near-duplicate skipping and
        ``max_frames``; ``counts`` gets ``skipped`` and ``events``."""
        last, seen, kept = {}, {}, 0
        counts['skipped'] = 0
        with open_source(uri, **self.source_options) as src:
            for item in src:
                frames = (item.frames.values() if isinstance(item, FrameSet)
                          else [item])
                for frame in frames:
                    n = seen.get(frame.camera, 0)
                    seen[frame.camera] = n + 1
                    if n % self.stride:
                        continue
                    if self.dedup_threshold > 0:
                        thumb = _thumbnail(frame.image)
                        previous = last.get(frame.camera)
                        if previous is not None and float(np.abs(
                                thumb - previous).mean()
                        ) < self.dedup_threshold:
                            counts['skipped'] += 1
                            continue
                        last[frame.camera] = thumb
                    kept += 1
                    yield frame
                if self.max_frames and kept >= self.max_frames:
                    break
            counts['events'] = [(e.kind, e.detail) for e in src.events
                                if e.kind in ('corrupt', 'dropped', 'partial')]
        for kind, detail in counts['events']:
            print_log(f'CameraFeedDataset: {kind}: {detail}',
                      logger='current', level=30)

    def _read_frames(self, uri: str) -> list[dict]:
        """Without a cache: the kept frames' samples, images in memory."""
        counts: dict = {}
        data = []
        for frame in self._kept_frames(uri, counts):
            sample = frame_to_sample(frame)
            self._frames.append(to_rgb8(frame.image))
            sample.pop('img')
            data.append(dict(sample, source=uri,
                             frame=len(self._frames) - 1))
        self.skipped_duplicates += counts['skipped']
        return data

    def _build_cache(self, uri: str, folder: str) -> None:
        import cv2
        tmp = f'{folder}.tmp-{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        counts: dict = {}
        entries = [self._write(tmp, frame, cv2)
                   for frame in self._kept_frames(uri, counts)]
        skipped, events = counts['skipped'], counts['events']
        with open(os.path.join(tmp, MANIFEST), 'w', encoding='utf-8') as f:
            json.dump({'source': uri, 'frames': entries,
                       'skipped_duplicates': skipped,
                       'events': events}, f)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process built it first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        print_log(f'CameraFeedDataset: cached {len(entries)} frames of {uri} '
                  f'in {folder} ({skipped} near-duplicates skipped)',
                  logger='current')

    def _write(self, folder: str, frame: Frame, cv2) -> dict[str, Any]:
        camera = _safe(str(frame.camera))
        os.makedirs(os.path.join(folder, camera), exist_ok=True)
        name = os.path.join(camera, f'{frame.index:08d}.{self.image_format}')
        image = np.ascontiguousarray(to_rgb8(frame.image)[..., ::-1])  # BGR
        if not cv2.imwrite(os.path.join(folder, name), image):
            raise OSError(f'CameraFeedDataset: cannot write {name} under '
                          f'{folder}; check free space and permissions')
        entry = {'file': name, 'camera': str(frame.camera),
                 'timestamp_ns': int(frame.timestamp_ns),
                 'frame_index': int(frame.index)}
        intrinsics = frame.meta.get('intrinsics')
        if intrinsics is not None:
            entry['intrinsics'] = np.asarray(intrinsics, float).tolist()
        return entry

    # -- items -----------------------------------------------------------
    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if 'frame' in info:  # held in memory (cache=False)
            # a copy: transforms may write into it
            info['img'] = self._frames[info.pop('frame')].copy()
        else:
            try:
                info['img'] = read_image(info['img_path'])
            except ImageReadError as exc:
                raise BadSampleError(
                    f'{exc}. img: the cached frame is missing or unreadable;'
                    f' delete {os.path.dirname(info["img_path"])} to rebuild '
                    'the cache') from exc
            if 'intrinsics' in info:
                info['intrinsics'] = np.asarray(info['intrinsics'],
                                                np.float32)
        info['img_shape'] = info['ori_shape'] = info['img'].shape[:2]
        return info
