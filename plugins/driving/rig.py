"""Camera rigs: several sources on one vehicle, synchronised into FrameSets.

A rig YAML (schema and conventions in docs/rig.md) names each camera's
source, intrinsics, distortion and camera-to-vehicle extrinsics (metres).
:class:`RigSource` opens every camera with ``open_source`` and yields a
:class:`~perception.sources.FrameSet` per frame of the reference camera,
with each other camera's nearest frame within the tolerance; incomplete
sets are dropped or yielded partial, with a ``partial`` event either way.
Optional undistortion uses a remap table computed once per camera.
"""
from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from perception.registry import SOURCES
from perception.sources import (Frame, FrameSet, FrameSource, SourceError,
                                SourceOpener, open_source)

MODELS = {'plumb_bob': 'plumb_bob', 'radtan': 'plumb_bob',
          'opencv': 'plumb_bob', 'equidistant': 'equidistant',
          'fisheye': 'equidistant', 'none': 'none'}
COEFF_COUNTS = {'plumb_bob': (4, 5, 8, 12, 14), 'equidistant': (4, ),
                'none': (0, )}


class RigError(SourceError):
    """A rig file is invalid; the message names the file, field and fix."""


@dataclass
class CameraSpec:
    """One camera of a rig (see docs/rig.md for the fields)."""

    name: str
    source: str
    options: dict[str, Any]
    time_offset_ns: int
    width: int
    height: int
    K: np.ndarray  # 3x3 float64, pixels
    model: str  # 'plumb_bob' | 'equidistant' | 'none'
    coeffs: np.ndarray  # OpenCV order for the model
    extrinsics: np.ndarray  # 4x4 float64, camera -> vehicle, metres


@dataclass
class RigSpec:
    """A parsed rig file."""

    path: str
    name: str
    cameras: dict[str, CameraSpec]
    tolerance_ns: int
    reference: str
    incomplete: str
    undistort: bool
    alpha: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _fail(path: str, where: str, why: str) -> RigError:
    return RigError(f'{path}: {where}: {why} (rig schema: docs/rig.md)')


def _matrix(path: str, where: str, value, shape: tuple[int, ...]
            ) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(path, where, f'expected numbers of shape {shape}, got '
                    f'{value!r}') from None
    if array.shape != shape or not np.isfinite(array).all():
        raise _fail(path, where, f'expected finite numbers of shape {shape}, '
                    f'got shape {array.shape}')
    return array


def _intrinsics(path: str, where: str, spec) -> np.ndarray:
    if not isinstance(spec, dict):
        raise _fail(path, where, 'give fx, fy, cx, cy or K (3x3)')
    if 'K' in spec:
        K = _matrix(path, f'{where}.K', spec['K'], (3, 3))
    else:
        missing = [k for k in ('fx', 'fy', 'cx', 'cy') if k not in spec]
        if missing:
            raise _fail(path, where, f'missing {", ".join(missing)}')
        fx, fy, cx, cy = (float(spec[k]) for k in ('fx', 'fy', 'cx', 'cy'))
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise _fail(path, where, 'focal lengths fx, fy must be > 0 pixels')
    return K


def _extrinsics(path: str, where: str, spec) -> np.ndarray:
    T = np.eye(4)
    if spec is None:
        return T
    if not isinstance(spec, dict):
        raise _fail(path, where, 'give translation + rotation_matrix or '
                    'quaternion_wxyz, or matrix (4x4)')
    if 'matrix' in spec:
        T = _matrix(path, f'{where}.matrix', spec['matrix'], (4, 4))
        if not np.allclose(T[3], [0, 0, 0, 1]):
            raise _fail(path, f'{where}.matrix', 'last row must be 0 0 0 1')
    else:
        T[:3, 3] = _matrix(path, f'{where}.translation',
                           spec.get('translation', [0, 0, 0]), (3, ))
        if 'rotation_matrix' in spec:
            T[:3, :3] = _matrix(path, f'{where}.rotation_matrix',
                                spec['rotation_matrix'], (3, 3))
        elif 'quaternion_wxyz' in spec:
            q = _matrix(path, f'{where}.quaternion_wxyz',
                        spec['quaternion_wxyz'], (4, ))
            norm = np.linalg.norm(q)
            if abs(norm - 1) > 1e-3:
                raise _fail(path, f'{where}.quaternion_wxyz', f'norm is '
                            f'{norm:.6f}; give a unit quaternion')
            w, x, y, z = q / norm
            T[:3, :3] = [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w),
                 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z),
                 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w),
                 1 - 2 * (x * x + y * y)]]
    R = T[:3, :3]
    if (not np.allclose(R @ R.T, np.eye(3), atol=1e-6)
            or abs(np.linalg.det(R) - 1) > 1e-6):
        raise _fail(path, where, 'the rotation is not orthonormal with '
                    'det +1 (check rows vs columns and handedness)')
    return T


def _camera(path: str, folder: str, name: str, spec) -> CameraSpec:
    where = f'cameras.{name}'
    if not isinstance(spec, dict) or 'source' not in spec:
        raise _fail(path, where, "each camera needs 'source:' (a video, "
                    'image folder, bag or stream URI)')
    source = str(spec['source'])
    if '://' not in source and not os.path.isabs(source):
        source = os.path.normpath(os.path.join(folder, source))
    for key in ('width', 'height'):
        if not isinstance(spec.get(key), int) or spec[key] <= 0:
            raise _fail(path, f'{where}.{key}', 'the calibrated image size '
                        'in pixels is required (a positive integer)')
    dist = spec.get('distortion') or {'model': 'none', 'coeffs': []}
    model = MODELS.get(str(dist.get('model', 'none')).lower())
    if model is None:
        raise _fail(path, f'{where}.distortion.model', f"unknown model "
                    f"{dist.get('model')!r}; use one of {sorted(MODELS)}")
    coeffs = np.asarray(dist.get('coeffs') or [], np.float64).ravel()
    if coeffs.size not in COEFF_COUNTS[model]:
        raise _fail(path, f'{where}.distortion.coeffs', f'{model} takes '
                    f'{COEFF_COUNTS[model]} coefficients, got {coeffs.size}')
    options = spec.get('options') or {}
    if not isinstance(options, dict):
        raise _fail(path, f'{where}.options', 'must be a mapping of '
                    'open_source keyword options')
    return CameraSpec(
        name=name, source=source, options=dict(options),
        time_offset_ns=int(spec.get('time_offset_ns', 0)),
        width=spec['width'], height=spec['height'],
        K=_intrinsics(path, f'{where}.intrinsics', spec.get('intrinsics')),
        model=model, coeffs=coeffs,
        extrinsics=_extrinsics(path, f'{where}.extrinsics',
                               spec.get('extrinsics')))


def load_rig(path: str | os.PathLike) -> RigSpec:
    """Parse and check a rig YAML file.

    Raises:
        RigError: the file, the field and what to write instead.
    """
    import yaml
    path = os.fspath(path)
    try:
        with open(path, encoding='utf-8') as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise RigError(f'{path}: rig file does not exist') from None
    except yaml.YAMLError as exc:
        raise RigError(f'{path}: not valid YAML ({exc})') from None
    if not isinstance(doc, dict) or not isinstance(doc.get('cameras'), dict) \
            or not doc['cameras']:
        raise _fail(path, 'cameras', 'a mapping of camera name -> camera '
                    'spec is required')
    folder = os.path.dirname(os.path.abspath(path))
    cameras = {str(n): _camera(path, folder, str(n), s)
               for n, s in doc['cameras'].items()}
    sync = doc.get('sync') or {}
    tolerance_ms = float(sync.get('tolerance_ms', 10))
    if tolerance_ms <= 0:
        raise _fail(path, 'sync.tolerance_ms', 'must be > 0')
    reference = str(sync.get('reference', next(iter(cameras))))
    if reference not in cameras:
        raise _fail(path, 'sync.reference', f"'{reference}' is not a camera; "
                    f'cameras: {", ".join(cameras)}')
    incomplete = str(sync.get('incomplete', 'drop'))
    if incomplete not in ('drop', 'partial'):
        raise _fail(path, 'sync.incomplete', "use 'drop' or 'partial'")
    undistort, alpha = _undistort_option(path, doc.get('undistort', False))
    name = str(doc.get('name') or os.path.basename(path).split('.')[0])
    return RigSpec(path, name, cameras, int(round(tolerance_ms * 1e6)),
                   reference, incomplete, undistort, alpha)


def _undistort_option(path: str, value) -> tuple[bool, float | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, dict) and set(value) <= {'alpha'}:
        alpha = value.get('alpha')
        if alpha is not None and not 0 <= float(alpha) <= 1:
            raise _fail(path, 'undistort.alpha', 'must be in [0, 1]')
        return True, None if alpha is None else float(alpha)
    raise _fail(path, 'undistort', 'use true, false or {alpha: A}')


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
            spec.undistort, spec.alpha = _undistort_option(uri, undistort)
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
