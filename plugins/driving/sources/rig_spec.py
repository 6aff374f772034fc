"""Rig files: the YAML that describes a camera rig (schema and conventions
in docs/rig.md), parsed and checked into a :class:`RigSpec`.

Every camera names its source, intrinsics, distortion and camera-to-vehicle
extrinsics (metres); ``sync`` sets the tolerance, the reference camera and
what to do with incomplete sets. Every error names the file, the field and
what to write instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perception.sources import SourceError

# Distortion model names accepted in a rig file -> the OpenCV model used.
DISTORTION_MODELS = {'plumb_bob': 'plumb_bob', 'radtan': 'plumb_bob',
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
    model = DISTORTION_MODELS.get(str(dist.get('model', 'none')).lower())
    if model is None:
        raise _fail(path, f'{where}.distortion.model', f"unknown model "
                    f"{dist.get('model')!r}; use one of "
                    f'{sorted(DISTORTION_MODELS)}')
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
    undistort, alpha = parse_undistort(path, doc.get('undistort', False))
    name = str(doc.get('name') or os.path.basename(path).split('.')[0])
    return RigSpec(path, name, cameras, int(round(tolerance_ms * 1e6)),
                   reference, incomplete, undistort, alpha)


def parse_undistort(path: str, value) -> tuple[bool, float | None]:
    """The rig file's (or an override's) ``undistort`` value: ``true``,
    ``false`` or ``{alpha: A}`` -> (undistort, alpha or None).

    Raises:
        RigError: any other value, naming ``path``.
    """
    if isinstance(value, bool):
        return value, None
    if isinstance(value, dict) and set(value) <= {'alpha'}:
        alpha = value.get('alpha')
        if alpha is not None and not 0 <= float(alpha) <= 1:
            raise _fail(path, 'undistort.alpha', 'must be in [0, 1]')
        return True, None if alpha is None else float(alpha)
    raise _fail(path, 'undistort', 'use true, false or {alpha: A}')
