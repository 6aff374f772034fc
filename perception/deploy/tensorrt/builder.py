"""Build a TensorRT engine from a deploy bundle's ONNX.

Strongly typed where the ONNX is explicit (``precision`` fp16 / int8 in
the manifest, or FP32 as FP32): the one path that works on TensorRT 10.x
and 11.x. Optimization profiles come from the manifest (dynamic batch: 1 /
1 / ``max_batch``; dynamic height and width: half / export / export size).
The timing cache persists between builds, in a file keyed by TensorRT
version, compute capability and GPU (a cache of another device is never
offered). The workspace defaults to what fits Jetson's shared memory.
Errors TensorRT only logs fail the build (:func:`compat.fatal_errors`).
"""
from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from typing import Any

from perception.deploy.manifest import load_bundle
from perception.deploy.tensorrt import (
    ENGINE_FILE,
    SIDECAR_FILE,
    TensorRTError,
    compat,
    import_tensorrt,
)
from perception.deploy.tensorrt.sidecar import device_facts, rebuild_command, write_sidecar

__all__ = ['BuildOptions', 'build_engine', 'profiles_for', 'timing_cache_path',
           'default_workspace', 'trtexec_command', 'is_tegra']

MiB = 1 << 20


@dataclass
class BuildOptions:
    """How to build (``perception deploy build --help``).

    Attributes:
        max_batch: largest batch of a dynamic-batch profile.
        workspace_mb: workspace pool limit (default :func:`default_workspace`).
        dla_core: build for this DLA core, GPU fallback on (Orin).
        flag_precision: 10.x only, FP32 ONNX: ``'fp16'`` sets the builder
            flag (weakly typed). Prefer ``export --fp16``.
        timing_cache_dir: where timing caches persist (default
            ``~/.cache/perception/tensorrt``).
        out: the engine file (default ``<bundle>/model.engine``).
        verbose: print TensorRT's info messages.
    """

    max_batch: int = 8
    workspace_mb: int | None = None
    dla_core: int | None = None
    flag_precision: str | None = None
    timing_cache_dir: str | None = None
    out: str | None = None
    verbose: bool = False


def is_tegra() -> bool:
    """A Jetson (L4T): GPU and CPU share the system memory."""
    return os.path.exists('/etc/nv_tegra_release')


def _total_memory() -> int:
    try:
        with open('/proc/meminfo', encoding='ascii') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def default_workspace(tegra: bool | None = None,
                      total: int | None = None) -> int:
    """Bytes: on a Jetson 1/8 of the shared memory, 256 MiB..2 GiB (the
    rest is for the engine, the app and the OS); elsewhere 4 GiB."""
    tegra = is_tegra() if tegra is None else tegra
    if not tegra:
        return 4 << 30
    total = _total_memory() if total is None else total
    return int(min(max(total // 8, 256 * MiB), 2 << 30))


def profiles_for(manifest: Any, max_batch: int = 8) -> dict:
    """Input name -> (min, opt, max) shapes of the one optimization profile
    the manifest's dynamic axes need."""
    shape = list(manifest.input['shape'])
    export = manifest.input.get('export_size') or [
        d if isinstance(d, int) else None for d in shape[2:]]
    if None in export:
        raise TensorRTError('the manifest records no export size '
                            '(input.export_size); re-export the bundle')
    channels = shape[1] if isinstance(shape[1], int) else int(
        manifest.input.get('channels') or 3)
    divisor = max(int(manifest.pretrained_cfg.get('pad_size_divisor') or 1), 1)
    height, width = (int(v) for v in export)
    fixed = isinstance(shape[0], int)
    batches = (shape[0],) * 3 if fixed else (1, 1, int(max_batch))
    if 'hw' in manifest.dynamic:
        low = [max(divisor, (v // 2) // divisor * divisor) for v in export]
        hw = (tuple(low), (height, width), (height, width))
    else:
        hw = ((height, width),) * 3
    return {manifest.input['name']: [
        [b, channels, h, w] for b, (h, w) in zip(batches, hw)]}


def timing_cache_path(folder: str | None, facts: dict) -> str:
    """The cache file for this TensorRT version, compute capability and
    GPU (the key: a cache is only valid for all three)."""
    folder = folder or os.path.join(os.path.expanduser('~'), '.cache',
                                    'perception', 'tensorrt')
    gpu = re.sub(r'[^A-Za-z0-9]+', '-', str(facts.get('gpu_name') or
                                            'nogpu')).strip('-').lower()
    key = (f"trt{facts.get('tensorrt_version')}-sm"
           f"{str(facts.get('compute_capability') or 'x').replace('.', '')}"
           f'-{gpu}')
    return os.path.join(folder, f'timing-{key}.cache')


def _parse(trt: Any, network: Any, logger: Any, onnx_path: str) -> None:
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse_from_file(onnx_path)
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    if not ok or errors:
        shown = '; '.join(e.strip().splitlines()[0] for e in errors[:3]) or \
            '; '.join(logger.errors[:3]) or 'no reason given'
        raise TensorRTError(f"TensorRT's ONNX parser refused '{onnx_path}': "
                            f'{shown} (the op lint oplint.json names '
                            'unsupported ops; check --target)')
    compat.fatal_errors(logger, 'ONNX parsing')


def build_engine(bundle_dir: str, options: BuildOptions | None = None,
                 trt: Any = None, facts: dict | None = None) -> dict:
    """Build ``bundle_dir``'s engine and sidecar; returns the sidecar.

    Args:
        trt: the ``tensorrt`` module (default: imported here; tests pass
            a fake).
        facts: :func:`sidecar.device_facts` (default: measured).

    Raises:
        TensorRTMissing: no TensorRT here.
        TensorRTError: parse or build errors (what TensorRT logged).
    """
    options = options or BuildOptions()
    trt = trt or import_tensorrt()
    bundle = load_bundle(bundle_dir)
    manifest = bundle.manifest
    facts = dict(facts or device_facts(trt))
    logger = compat.make_logger(trt, options.verbose)
    builder = trt.Builder(logger)
    strongly_typed = not options.flag_precision
    network = builder.create_network(compat.network_flags(trt, strongly_typed))
    _parse(trt, network, logger, bundle.onnx_path)
    config = builder.create_builder_config()
    workspace = int(options.workspace_mb * MiB) if options.workspace_mb \
        else default_workspace()
    compat.set_workspace(trt, config, workspace)
    flags = compat.precision_flags(trt, config, options.flag_precision)
    if options.flag_precision and manifest.precision != 'fp32':
        raise TensorRTError(f'--flag-precision on a {manifest.precision} '
                            'bundle: its precision is explicit already; '
                            'drop the flag')
    if options.dla_core is not None:
        compat.use_dla(trt, builder, config, options.dla_core)
    profiles = profiles_for(manifest, options.max_batch)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in profiles.items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    cache_path = timing_cache_path(options.timing_cache_dir, facts)
    cached = b''
    if os.path.isfile(cache_path):
        with open(cache_path, 'rb') as f:
            cached = f.read()
    cache = config.create_timing_cache(cached)
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    compat.fatal_errors(logger, 'engine build')
    if serialized is None:
        raise TensorRTError('TensorRT built no engine (it logged no error); '
                            'rerun with --verbose')
    out = options.out or os.path.join(bundle_dir, ENGINE_FILE)
    with open(out, 'wb') as f:
        f.write(bytes(serialized))
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    with open(cache_path, 'wb') as f:
        f.write(bytes(config.get_timing_cache().serialize()))
    record = dict(
        engine=os.path.basename(out), onnx_sha256=manifest.sha256,
        precision=manifest.precision, strongly_typed=strongly_typed,
        flag_precision=options.flag_precision, builder_flags=flags,
        profiles=profiles, workspace_bytes=workspace,
        dla_core=options.dla_core, timing_cache=os.path.basename(cache_path),
        tensorrt_major=compat.major(trt), **facts,
        built=datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%dT%H:%M:%SZ'),
        warnings=logger.warnings[:20],
        rebuild=rebuild_command(bundle_dir, dict(
            dla_core=options.dla_core, flag_precision=options.flag_precision)))
    write_sidecar(os.path.join(os.path.dirname(out), SIDECAR_FILE), record)
    return record


def trtexec_command(bundle_dir: str, options: BuildOptions | None = None
                    ) -> str:
    """The ``trtexec`` line that builds the same engine."""
    options = options or BuildOptions()
    manifest = load_bundle(bundle_dir, check_sha256=False).manifest
    (name, (low, opt, high)), = profiles_for(manifest,
                                             options.max_batch).items()

    def dims(shape: list) -> str:
        return f"{name}:{'x'.join(str(v) for v in shape)}"
    workspace = options.workspace_mb or default_workspace() // MiB
    parts = ['trtexec', f'--onnx={os.path.join(bundle_dir, "model.onnx")}',
             f'--saveEngine={options.out or os.path.join(bundle_dir, ENGINE_FILE)}',
             f'--minShapes={dims(low)}', f'--optShapes={dims(opt)}',
             f'--maxShapes={dims(high)}',
             f'--memPoolSize=workspace:{int(workspace)}M',
             '--timingCacheFile=' + timing_cache_path(
                 options.timing_cache_dir, dict(tensorrt_version='VERSION',
                                                compute_capability='CC',
                                                gpu_name='GPU'))]
    if options.flag_precision == 'fp16':
        parts.append('--fp16')
    else:
        parts.append('--stronglyTyped')
    if options.dla_core is not None:
        parts += [f'--useDLACore={options.dla_core}', '--allowGPUFallback']
    return ' '.join(parts)
