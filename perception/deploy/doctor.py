"""``perception deploy doctor``: what this device has for running engines
(JetPack / L4T, TensorRT, CUDA, GPU and compute capability, DLA cores,
memory, power mode) and, for each thing missing, how to get it. It never
fails for something missing: it says so."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

__all__ = ['collect', 'format_report', 'L4T_TO_JETPACK', 'jetpack_of']

#: L4T major.minor -> JetPack (NVIDIA's release table).
L4T_TO_JETPACK = {'35.': '5.x (TensorRT 8.5: not supported, upgrade)',
                  '36.': '6.x (TensorRT 10.3)', '38.': '7.x (TensorRT 11)'}


def jetpack_of(release: str) -> str | None:
    for prefix, jetpack in L4T_TO_JETPACK.items():
        if release.startswith(prefix):
            return jetpack
    return None


def _l4t(path: str = '/etc/nv_tegra_release') -> dict:
    """``# R36 (release), REVISION: 4.0, ...`` -> 36.4.0."""
    try:
        with open(path, encoding='ascii', errors='replace') as f:
            text = f.read()
    except OSError:
        return {}
    found = re.search(r'R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)', text)
    if not found:
        return dict(l4t=text.strip()[:80], jetpack=None)
    release = f'{found.group(1)}.{found.group(2)}'
    return dict(l4t=release, jetpack=jetpack_of(release))


def _meminfo() -> int | None:
    try:
        with open('/proc/meminfo', encoding='ascii') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _power_mode() -> str | None:
    tool = shutil.which('nvpmodel')
    if not tool:
        return None
    try:
        out = subprocess.run([tool, '-q'], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return ' '.join(lines[:2]) or None


def collect(tegra_release: str = '/etc/nv_tegra_release') -> dict:
    """Device facts and what is missing (``missing``: list of (what, how))."""
    import torch
    facts: dict = dict(_l4t(tegra_release))
    facts['tegra'] = os.path.exists(tegra_release)
    facts['memory_bytes'] = _meminfo()
    facts['power_mode'] = _power_mode() if facts['tegra'] else None
    facts['torch'] = torch.__version__
    facts['torch_cuda'] = torch.version.cuda
    facts['cuda_available'] = bool(torch.cuda.is_available())
    missing: list[tuple[str, str]] = []
    if facts['cuda_available']:
        major, minor = torch.cuda.get_device_capability(0)
        facts['gpu_name'] = torch.cuda.get_device_name(0)
        facts['compute_capability'] = f'{major}.{minor}'
    else:
        facts['gpu_name'] = facts['compute_capability'] = None
        missing.append(('CUDA GPU (torch sees none)', 'on a Jetson install '
                        "NVIDIA's Jetson torch wheel for your JetPack; "
                        'elsewhere a CUDA build of torch and the driver'))
    from perception.deploy.tensorrt import INSTALL_HINT, TensorRTMissing, import_tensorrt
    try:
        trt = import_tensorrt()
        facts['tensorrt'] = str(trt.__version__)
    except TensorRTMissing as exc:
        trt, facts['tensorrt'] = None, None
        facts['tensorrt_error'] = str(exc).split(';')[0]
        missing.append(('TensorRT', INSTALL_HINT))
    facts['dla_cores'] = None
    if trt is not None and facts['cuda_available']:
        try:
            from perception.deploy.tensorrt.compat import make_logger
            facts['dla_cores'] = int(trt.Builder(make_logger(trt)).num_DLA_cores)
        except Exception as exc:  # noqa: BLE001 - a fact, not a failure
            facts['dla_cores_error'] = f'{type(exc).__name__}: {exc}'[:200]
    if facts['tegra'] and facts.get('power_mode') is None:
        missing.append(('power mode', 'nvpmodel not found or not readable '
                        '(sudo nvpmodel -q; MAXN for benchmarks)'))
    try:
        import onnxruntime
        facts['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        facts['onnxruntime'] = None
        missing.append(('onnxruntime', "pip install 'perception-toolkit[deploy]'"))
    facts['missing'] = [dict(what=w, how=h) for w, h in missing]
    facts['ready'] = facts['tensorrt'] is not None and facts['cuda_available']
    return facts


def format_report(facts: dict) -> list[str]:
    """Lines a person reads."""
    gib = (f"{facts['memory_bytes'] / (1 << 30):.1f} GiB"
           if facts.get('memory_bytes') else 'unknown')
    device = (f"Jetson (L4T {facts.get('l4t')}, JetPack {facts.get('jetpack')})"
              if facts['tegra'] else 'not a Jetson (no /etc/nv_tegra_release)')
    dla = facts['dla_cores'] if facts['dla_cores'] is not None else \
        'unknown (needs TensorRT and a GPU)'
    lines = [
        f'device: {device}',
        f"TensorRT: {facts['tensorrt'] or 'not installed'}",
        f"CUDA: torch {facts['torch']} (CUDA {facts['torch_cuda'] or 'none'}), "
        f"GPU {facts['gpu_name'] or 'none'}"
        + (f", compute capability {facts['compute_capability']}"
           if facts.get('compute_capability') else ''),
        f'DLA cores: {dla}',
        f'memory: {gib}' + (' (shared by CPU and GPU)' if facts['tegra'] else ''),
        f"power mode: {facts.get('power_mode') or 'n/a'}",
        f"onnxruntime: {facts.get('onnxruntime') or 'not installed'}",
    ]
    for item in facts['missing']:
        lines.append(f"missing: {item['what']}: {item['how']}")
    lines.append('ready to build and run TensorRT engines' if facts['ready']
                 else 'not ready for TensorRT engines: TensorRT '
                 + ('is not installed here' if not facts['tensorrt'] else
                    'is installed but no CUDA GPU is visible')
                 + '; ONNX Runtime bundles still run (perception infer)')
    return lines
