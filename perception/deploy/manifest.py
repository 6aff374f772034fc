"""The deploy bundle: what ``perception export`` writes and every backend
reads (ONNX Runtime, TensorRT, ``deploy check`` on a device).

Layout of a bundle folder ``DIR``::

    DIR/model.onnx        the graph, self-contained (weights inside; external
                          data ``model.onnx.data`` only above protobuf's 2 GB)
    DIR/manifest.json     this module's :class:`Manifest`: PretrainedCfg,
                          input layout, outputs, post-processing settings,
                          exporter path and versions, sha256 of model.onnx
    DIR/parity.json       ONNX Runtime vs PyTorch report (perception.deploy.verify)
    DIR/oplint.json       static TensorRT op lint for the target (perception.deploy.oplint)
    DIR/precision.json    with --fp16 / --int8: which node runs in which
                          precision, calibration record and the accuracy gate
                          (perception.deploy.precision); model_fp32.onnx is
                          then the FP32 original
    DIR/reference/        inputs.npz (key = input name: preprocessed batches)
                          and outputs.npz (key = output name: what PyTorch
                          gave for them), for checks on a device

The graph's input is what the model's data preprocessor gives (normalized
with mean/std or CT windows, padded to ``pad_size_divisor``), NCHW float32;
its outputs are decoded boxes ``xyxy`` in input pixels (pixel-edge) and
per-class scores, or with ``postprocess.nms == 'onnx'`` the detections after
ONNX ``NonMaxSuppression`` padded to ``max_per_img``. Mapping boxes back to
the source image is the backend's job (PretrainedCfg's resize policy).

The manifest is also stored in the model's ``metadata_props`` (key
``perception.manifest``, JSON, without the sha256 that the file cannot hold
of itself), so a bare ``.onnx`` file still loads with :func:`load_bundle`.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from perception.data.pretrained_cfg import PretrainedCfg
from perception.deploy.tasks import NMS_MODES, validate_postprocess
from perception.errors import UserError

__all__ = [
    'BundleError', 'Manifest', 'Bundle', 'load_bundle', 'sha256_file',
    'MODEL_FILE', 'MANIFEST_FILE', 'PARITY_FILE', 'OPLINT_FILE',
    'REFERENCE_DIR', 'REFERENCE_INPUTS', 'REFERENCE_OUTPUTS', 'METADATA_KEY',
    'FORMAT_VERSION', 'NMS_MODES', 'DYNAMIC_MODES', 'TARGETS',
    'PRECISION_FILE', 'FP32_MODEL_FILE', 'PRECISIONS'
]

MODEL_FILE = 'model.onnx'
MANIFEST_FILE = 'manifest.json'
PARITY_FILE = 'parity.json'
OPLINT_FILE = 'oplint.json'
PRECISION_FILE = 'precision.json'
FP32_MODEL_FILE = 'model_fp32.onnx'
PRECISIONS = ('fp32', 'fp16', 'int8')
REFERENCE_DIR = 'reference'
REFERENCE_INPUTS = 'inputs.npz'
REFERENCE_OUTPUTS = 'outputs.npz'
#: metadata_props key holding the manifest JSON inside model.onnx.
METADATA_KEY = 'perception.manifest'
#: layout version of the manifest; bumped when a field changes meaning.
FORMAT_VERSION = 1

DYNAMIC_MODES = ('none', 'batch', 'batch,hw')
TARGETS = ('trt10.3', 'trt11')


class BundleError(UserError, ValueError):
    """A bundle (or bare .onnx) cannot be used: missing, corrupt or not
    matching its manifest. The message names the file and the field."""


def _default_input() -> dict:
    return dict(name='inputs', layout='NCHW', dtype='float32',
                shape=['batch', 3, 'height', 'width'],
                holds='the data preprocessor output: normalized (mean/std or '
                'CT windows) and padded to pad_size_divisor')


def _default_outputs() -> dict:
    return dict(names=['boxes', 'scores'],
                shapes={'boxes': ['batch', 'num_priors', 4],
                        'scores': ['batch', 'num_priors', 'num_classes']},
                box_format='xyxy', box_space='input_pixels')


def _default_postprocess() -> dict:
    return dict(nms='none', score_thr=0.05, nms_iou=0.6, max_per_img=100)


@dataclass
class Manifest:
    """The record of one exported model (``manifest.json``).

    Attributes:
        task: ``'detection'``, ``'segmentation'`` or ``'classification'``
            (:mod:`perception.deploy.tasks`: what each one's graph outputs).
        pretrained_cfg: :meth:`PretrainedCfg.to_dict` (class names,
            mean/std, resize policy, input size, pad_size_divisor, CT
            windows, slice offsets, channel meaning).
        input: ``name``, ``layout`` ('NCHW'), ``dtype`` ('float32'),
            ``shape`` (ints, or strings for dynamic axes), ``holds``.
        outputs: ``names`` (graph order), ``shapes`` (name -> dims, strings
            for dynamic axes), ``box_format`` ('xyxy') and ``box_space``
            ('input_pixels').
        postprocess: detection: ``nms`` ('none' | 'onnx'), ``score_thr``,
            ``nms_iou``, ``max_per_img``; segmentation: ``output``
            ('logits' | 'labels') and ``labels_dtype``; classification:
            ``output`` ('scores' | 'logits').
        dynamic: ``'none'``, ``'batch'`` or ``'batch,hw'``.
        opset: ONNX default-domain opset of the graph.
        target: TensorRT target the op lint checked (``trt10.3``, ``trt11``).
        exporter: ``path`` ('dynamo' | 'legacy'), ``fallback_reason`` where
            dynamo failed, versions of torch / onnx / onnxscript / perception.
        sha256: of ``model.onnx`` ('' inside the model's own metadata).
        created: UTC time, ISO 8601.
        source: what was exported (config file, checkpoint file name).
        precision: ``'fp32'``, or ``'fp16'`` / ``'int8'``: explicit in the
            graph (Casts / Q/DQ nodes; ``precision.json`` says which node
            runs in which, ``model_fp32.onnx`` is the FP32 original).
        format_version: layout version of this record.
    """

    task: str = 'detection'
    pretrained_cfg: dict = field(default_factory=dict)
    input: dict = field(default_factory=_default_input)
    outputs: dict = field(default_factory=_default_outputs)
    postprocess: dict = field(default_factory=_default_postprocess)
    dynamic: str = 'batch'
    opset: int = 17
    target: str = 'trt10.3'
    exporter: dict = field(default_factory=dict)
    sha256: str = ''
    created: str = ''
    source: dict = field(default_factory=dict)
    precision: str = 'fp32'
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.created:
            self.created = datetime.datetime.now(
                datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        if isinstance(self.pretrained_cfg, PretrainedCfg):
            self.pretrained_cfg = self.pretrained_cfg.to_dict()

    # -- conversions ------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-able dict (what ``manifest.json`` holds)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any],
                  where: str = 'manifest') -> Manifest:
        """From :meth:`to_dict` output; a bad field is a :class:`BundleError`
        naming ``where`` and the field."""
        if not isinstance(values, Mapping):
            raise BundleError(f'{where}: expected a JSON object, got '
                              f'{type(values).__name__}; re-export the model')
        version = values.get('format_version', FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BundleError(
                f'{where}: format_version {version!r} is not one this '
                f'perception reads (<= {FORMAT_VERSION}); upgrade '
                'perception-toolkit or re-export')
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BundleError(f'{where}: unknown field(s) {unknown}; '
                              'written by a newer perception? re-export')
        manifest = cls(**dict(values))
        manifest.validate(where)
        return manifest

    @property
    def pretrained(self) -> PretrainedCfg:
        """The :class:`PretrainedCfg` the graph's input was made with."""
        try:
            return PretrainedCfg.from_dict(self.pretrained_cfg)
        except (TypeError, ValueError) as exc:
            raise BundleError(f'manifest field pretrained_cfg: {exc}') from None

    def validate(self, where: str = 'manifest') -> None:
        """Raise :class:`BundleError` naming the first bad field."""
        def bad(name: str, what: str) -> BundleError:
            return BundleError(f'{where}: field {name} {what}; re-export the '
                               'model (perception export)')

        validate_postprocess(self.task, self.postprocess, bad)
        if self.dynamic not in DYNAMIC_MODES:
            raise bad('dynamic', f'is {self.dynamic!r}, not one of '
                      f'{DYNAMIC_MODES}')
        if not isinstance(self.opset, int) or self.opset < 7:
            raise bad('opset', f'is {self.opset!r}, not an ONNX opset')
        for key in ('name', 'layout', 'dtype', 'shape'):
            if key not in (self.input or {}):
                raise bad(f'input.{key}', 'is missing')
        if self.input['layout'] != 'NCHW':
            raise bad('input.layout', f"is {self.input['layout']!r}, "
                      "only 'NCHW' is written")
        names = (self.outputs or {}).get('names')
        if not names or not isinstance(names, list):
            raise bad('outputs.names', 'is missing or empty')
        shapes = self.outputs.get('shapes') or {}
        for name in names:
            if name not in shapes:
                raise bad(f'outputs.shapes.{name}', 'is missing')
        if self.precision not in PRECISIONS:
            raise bad('precision', f'is {self.precision!r}, not one of '
                      f'{PRECISIONS}')
        self.pretrained  # noqa: B018 - raises on a bad pretrained_cfg

    # -- files --------------------------------------------------------------

    def write(self, bundle_dir: str) -> str:
        """Write ``bundle_dir/manifest.json``; returns its path."""
        os.makedirs(bundle_dir, exist_ok=True)
        path = os.path.join(bundle_dir, MANIFEST_FILE)
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write('\n')
        return path

    @classmethod
    def read(cls, bundle_dir: str) -> Manifest:
        """Read ``bundle_dir/manifest.json`` (BundleError if missing/corrupt)."""
        path = os.path.join(bundle_dir, MANIFEST_FILE)
        if not os.path.isfile(path):
            raise BundleError(
                f"'{path}' not found: '{bundle_dir}' is not a deploy bundle; "
                'make one with `perception export CONFIG CHECKPOINT --out DIR`')
        try:
            with open(path, encoding='utf-8') as f:
                values = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"'{path}' is not valid JSON ({exc}); "
                              're-export the model') from None
        return cls.from_dict(values, where=f"'{path}'")

    def metadata_json(self) -> str:
        """The manifest as stored in the model's ``metadata_props``."""
        values = self.to_dict()
        values['sha256'] = ''
        return json.dumps(values, sort_keys=True)


@dataclass
class Bundle:
    """A loaded bundle: where the model is and how to feed it.

    Attributes:
        onnx_path: the ``.onnx`` file.
        manifest: its :class:`Manifest`.
        pretrained_cfg: ``manifest.pretrained`` (the preprocessing record).
        root: the bundle folder, or ``None`` for a bare ``.onnx`` file.
    """

    onnx_path: str
    manifest: Manifest
    pretrained_cfg: PretrainedCfg
    root: str | None = None

    def file(self, name: str) -> str | None:
        """A file of the bundle folder (``parity.json``...), if present."""
        if self.root is None:
            return None
        path = os.path.join(self.root, name)
        return path if os.path.exists(path) else None

    def reference(self) -> tuple[dict, dict] | None:
        """``(inputs, outputs)`` reference arrays by name, if stored."""
        folder = self.file(REFERENCE_DIR)
        if folder is None:
            return None
        import numpy as np
        with np.load(os.path.join(folder, REFERENCE_INPUTS)) as i, \
                np.load(os.path.join(folder, REFERENCE_OUTPUTS)) as o:
            return dict(i), dict(o)


def sha256_file(path: str) -> str:
    """Hex sha256 of a file (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _read_graph(path: str) -> Any:
    import onnx
    try:
        return onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BundleError(f"'{path}' is not a readable ONNX model ({detail}); "
                          're-export it with `perception export`') from None


def _dims(value_info: Any) -> list:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField('dim_value') else (d.dim_param or '?')
            for d in shape.dim]


def check_graph_io(model: Any, manifest: Manifest, where: str) -> None:
    """The graph's inputs and outputs are the manifest's (names, ranks,
    static dims); a mismatch is one BundleError line."""
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    want_in = manifest.input['name']
    if [i.name for i in inputs] != [want_in]:
        raise BundleError(
            f"{where}: the model's inputs {[i.name for i in inputs]} do not "
            f"match manifest field input.name {want_in!r}; the manifest "
            'belongs to another model: re-export')
    _check_dims(where, 'input.shape', _dims(inputs[0]), manifest.input['shape'])
    got_out = [o.name for o in model.graph.output]
    want_out = list(manifest.outputs['names'])
    if got_out != want_out:
        raise BundleError(
            f"{where}: the model's outputs {got_out} do not match manifest "
            f'field outputs.names {want_out}; the manifest belongs to another '
            'model: re-export')
    for output in model.graph.output:
        _check_dims(where, f'outputs.shapes.{output.name}', _dims(output),
                    manifest.outputs['shapes'][output.name])


def _check_dims(where: str, name: str, got: list, want: list) -> None:
    same = len(got) == len(want) and all(
        not isinstance(g, int) or not isinstance(w, int) or g == 0 or g == w
        for g, w in zip(got, want))
    if not same:
        raise BundleError(f'{where}: manifest field {name} is {want} but the '
                          f'model has {got}; re-export the model')


def load_bundle(path: str, check_sha256: bool = True) -> Bundle:
    """Open a bundle folder or a bare ``.onnx`` file.

    Args:
        path: a bundle folder (``model.onnx`` + ``manifest.json``) or an
            ``.onnx`` file (its manifest from ``metadata_props``; a
            ``manifest.json`` beside it is used if present).
        check_sha256: compare ``model.onnx`` with the manifest's sha256.

    Raises:
        BundleError: missing files, a corrupt model or manifest, a sha256
            or input/output mismatch (one line naming the file and field).
    """
    path = os.path.expanduser(os.fspath(path))
    if os.path.isdir(path):
        root, onnx_path = path, os.path.join(path, MODEL_FILE)
        if not os.path.isfile(onnx_path):
            raise BundleError(f"'{onnx_path}' not found: '{path}' is not a "
                              'deploy bundle; make one with `perception '
                              'export CONFIG CHECKPOINT --out DIR`')
    elif os.path.isfile(path):
        root, onnx_path = None, path
        beside = os.path.dirname(os.path.abspath(path))
        if os.path.basename(path) == MODEL_FILE and \
                os.path.isfile(os.path.join(beside, MANIFEST_FILE)):
            root = beside
    else:
        raise BundleError(f"model '{path}' not found; pass a bundle folder "
                          'from `perception export` or an .onnx file')
    if root is not None:
        manifest = Manifest.read(root)
        where = f"'{os.path.join(root, MANIFEST_FILE)}'"
        if check_sha256 and manifest.sha256:
            digest = sha256_file(onnx_path)
            if digest != manifest.sha256:
                raise BundleError(
                    f"{where}: field sha256 {manifest.sha256[:12]}... does not "
                    f"match '{onnx_path}' ({digest[:12]}...); the model was "
                    'changed or the manifest belongs to another: re-export')
        model = _read_graph(onnx_path)
    else:
        model = _read_graph(onnx_path)
        where = f"'{onnx_path}' metadata_props[{METADATA_KEY!r}]"
        props = {p.key: p.value for p in model.metadata_props}
        if METADATA_KEY not in props:
            raise BundleError(
                f"'{onnx_path}' has no perception manifest in its "
                f'metadata_props ({METADATA_KEY!r}); export it with '
                '`perception export` or pass the bundle folder')
        try:
            values = json.loads(props[METADATA_KEY])
        except json.JSONDecodeError as exc:
            raise BundleError(f'{where} is not valid JSON ({exc}); '
                              're-export the model') from None
        manifest = Manifest.from_dict(values, where=where)
    check_graph_io(model, manifest, where)
    return Bundle(onnx_path=onnx_path, manifest=manifest,
                  pretrained_cfg=manifest.pretrained, root=root)
