"""Camera rigs: several sources on one vehicle, synchronised into FrameSets.

A rig YAML (parsed by :func:`~.rig_spec.load_rig`; schema in docs/rig.md)
names each camera's source, intrinsics, distortion and extrinsics.
:class:`RigSource` opens every camera with ``open_source`` and yields a
:class:`~perception.sources.FrameSet` per frame of the reference camera,
with each other camera's nearest frame within the tolerance; incomplete
sets are dropped or yielded partial, with a ``partial`` event either way.
Optional undistortion uses a remap table computed once per camera.
"""
from __future__ import annotations

import collections
import os
from typing import Iterator

import numpy as np

from perception.registry import SOURCES
from perception.sources import Frame, FrameSet, FrameSource, SourceError, SourceOpener, open_source

from .rig_spec import CameraSpec, RigError, load_rig, parse_undistort


class Undistorter:
    """Precomputed remap removing one camera's lens distortion.

    ``new_K`` is the camera matrix of the undistorted image.
    """

    def __init__(self, camera: CameraSpec, alpha: float | None = None) -> None:
        import cv2
        size = (camera.width, camera.height)
        K, D = camera.K, camera.coeffs
        if camera.model == 'equidistant':
            self.new_K = K.copy() if alpha is None else \
                cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(
                    K, D, size, np.eye(3), balance=alpha)
            self.maps = cv2.fisheye.initUndistortRectifyMap(
                K, D, np.eye(3), self.new_K, size, cv2.CV_16SC2)
        else:
            self.new_K = K.copy() if alpha is None else \
                cv2.getOptimalNewCameraMatrix(K, D, size, alpha)[0]
            # CV_16SC2 and bilinear remap: the same arithmetic as
            # cv2.undistort, at a fraction of its cost per frame.
            self.maps = cv2.initUndistortRectifyMap(
                K, D, None, self.new_K, size, cv2.CV_16SC2)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2
        return cv2.remap(image, self.maps[0], self.maps[1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT)


class RigSource(FrameSource):
    """FrameSets of a rig's cameras, synchronised on the reference camera.

    Args:
        uri: the rig YAML file.
        tolerance_ms, incomplete, undistort: override the file's values.
        timeout_s: passed to every camera source.
    """

    def __init__(self, uri: str, tolerance_ms: float | None = None,
                 incomplete: str | None = None,
                 undistort: bool | dict | None = None,
                 timeout_s: float | None = None) -> None:
        super().__init__(uri, timeout_s)
        self.spec = spec = load_rig(uri)
        if tolerance_ms is not None:
            spec.tolerance_ns = int(round(float(tolerance_ms) * 1e6))
        if incomplete is not None:
            if incomplete not in ('drop', 'partial'):
                raise ValueError(f"{uri}: incomplete must be 'drop' or "
                                 f"'partial', got {incomplete!r}")
            spec.incomplete = incomplete
        if undistort is not None:
            spec.undistort, spec.alpha = parse_undistort(uri, undistort)
        self.undistorters = {
            n: Undistorter(c, spec.alpha) for n, c in spec.cameras.items()
            if spec.undistort and c.model != 'none'}
        self.sources: dict[str, FrameSource] = {}
        try:
            for name, cam in spec.cameras.items():
                options = dict(cam.options)
                if timeout_s is not None:
                    options.setdefault('timeout_s', timeout_s)
                try:
                    self.sources[name] = open_source(cam.source, **options)
                except (SourceError, TypeError, ValueError) as exc:
                    raise RigError(f'{uri}: cameras.{name}.source: {exc}'
                                   ) from exc
        except Exception:
            self._close()
            raise

    def _prepare(self, name: str, frame: Frame) -> Frame:
        cam = self.spec.cameras[name]
        height, width = frame.image.shape[:2]
        if (width, height) != (cam.width, cam.height):
            raise RigError(
                f'{self.uri}: cameras.{name}: frame {frame.index} is '
                f'{width}x{height} but the calibration is for '
                f'{cam.width}x{cam.height}; fix width/height (and the '
                'intrinsics) or the source')
        meta = dict(frame.meta, rig=self.spec.name,
                    camera_timestamp_ns=frame.timestamp_ns,
                    intrinsics=cam.K.copy(), extrinsics=cam.extrinsics.copy(),
                    distortion={'model': cam.model,
                                'coeffs': cam.coeffs.tolist()})
        image = frame.image
        if name in self.undistorters:
            undistorter = self.undistorters[name]
            image = undistorter(image)
            meta.update(raw_intrinsics=cam.K.copy(),
                        intrinsics=undistorter.new_K.copy(),
                        distortion={'model': 'none', 'coeffs': []},
                        undistorted=True)
        return Frame(image, frame.timestamp_ns + cam.time_offset_ns,
                     frame.index, name, meta)

    def _iter_frames(self) -> Iterator[FrameSet]:
        spec, tol = self.spec, self.spec.tolerance_ns
        ref = spec.reference
        others = [n for n in spec.cameras if n != ref]
        iters = {n: iter(s) for n, s in self.sources.items()}
        buffers = {n: collections.deque() for n in others}
        exhausted: set[str] = set()

        def pull(name: str) -> Frame | None:
            try:
                return self._prepare(name, next(iters[name]))
            except StopIteration:
                exhausted.add(name)
                return None

        while True:
            anchor = pull(ref)
            if anchor is None:
                break
            t = anchor.timestamp_ns
            frames, missing = {ref: anchor}, []
            for name in others:
                buf = buffers[name]
                while name not in exhausted and (
                        not buf or buf[-1].timestamp_ns <= t + tol):
                    frame = pull(name)
                    if frame is not None:
                        buf.append(frame)
                near = [f for f in buf if abs(f.timestamp_ns - t) <= tol]
                if near:
                    best = min(near, key=lambda f: abs(f.timestamp_ns - t))
                    frames[name] = best
                stale = 0  # frames no later reference frame can use
                while buf and (buf[0].timestamp_ns < t - tol or
                               (near and buf[0].timestamp_ns <=
                                best.timestamp_ns)):
                    used = buf.popleft() is frames.get(name)
                    stale += not used
                if stale:
                    self.emit('dropped', f'{self.uri}: {name}: {stale} '
                              'frames matched no reference frame within '
                              f'{tol / 1e6:g} ms', stale)
                if not near:
                    missing.append(name)
            if missing:
                self.stats['incomplete'] = int(
                    self.stats.get('incomplete', 0)) + 1
                what = 'dropped' if spec.incomplete == 'drop' else 'partial'
                self.emit('partial', f'{self.uri}: set at {t} ns has no frame '
                          f'within {tol / 1e6:g} ms from {", ".join(missing)}'
                          f' ({what})')
                if spec.incomplete == 'drop':
                    continue
            yield FrameSet(t, frames, {'rig': spec.name, 'missing': missing})
        self.emit('eos', f'{self.uri}: reference camera {ref} ended')

    def _close(self) -> None:
        for source in self.sources.values():
            source.close()


@SOURCES.register_module()
class RigOpener(SourceOpener):
    """Rig YAML files (``*.rig.yaml`` or any YAML with ``cameras:``)."""

    priority = 200

    def can_open(self, uri: str) -> bool:
        low = uri.lower()
        if '://' in uri or not low.endswith(('.yaml', '.yml')):
            return False
        if low.endswith(('.rig.yaml', '.rig.yml')):
            return True
        if not os.path.isfile(uri) or os.path.getsize(uri) > 1 << 20:
            return False
        import yaml
        try:
            with open(uri, encoding='utf-8') as f:
                doc = yaml.safe_load(f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return False
        return isinstance(doc, dict) and isinstance(doc.get('cameras'), dict)

    def open(self, uri: str, **options) -> FrameSource:
        return RigSource(uri, **options)
