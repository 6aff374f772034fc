"""Helpers of the `perception export --fp16 / --int8` CLI tests: tiny
configs over generated data, untrained checkpoints whose scores spread
(as in test_export.py), the CLI run in process or as the console script,
and the bundle files an FP16/INT8 export must leave."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from perception.cli import main

REPO = Path(__file__).resolve().parents[2]
PERCEPTION = str(Path(sys.executable).parent / 'perception')
DIMS = (16, 24, 32, 48)


def tiny_model(out_indices=(1, 2, 3), in_chans: int = 3, **head) -> dict:
    """A one-block-per-stage ConvNeXt -> 16-channel FPN (the config's
    strides) -> TAL head (``head``: more of its settings)."""
    return dict(
        backbone=dict(_delete_=True, type='ConvNeXt', in_chans=in_chans,
                      arch=dict(depths=(1, 1, 1, 1), dims=DIMS),
                      out_indices=tuple(out_indices)),
        neck=dict(in_channels=[DIMS[i] for i in out_indices],
                  out_channels=16),
        head=dict(in_channels=16, feat_channels=16, **head))


def checkpoint(config: Path, out: Path, slice_offsets=()) -> Path:
    """Untrained weights of ``config``'s model, class scores spread around
    0.5 (cls bias 0, head noise) so there are detections to gate on; the
    meta holds the PretrainedCfg (as PretrainedCfgHook writes it) with
    ``slice_offsets`` for CT slabs."""
    from perception.data import PretrainedCfg
    from perception.deploy.export import _test_pipeline
    from perception.engine.config import load_config
    from perception.registry import MODELS
    cfg = load_config(str(config))
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone'].pop('init_cfg', None)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for conv in model.head.cls_preds:
            conv.bias.fill_(0.0)
    record = PretrainedCfg.from_model(model, _test_pipeline(cfg),
                                      class_names=model.class_names,
                                      slice_offsets=list(slice_offsets))
    torch.save({'state_dict': model.state_dict(),
                'meta': {'pretrained_cfg': record.to_dict()}}, out)
    return out


#: the TorchScript exporter and no onnxslim keep the default tests fast
#: (the dynamo path of the FP32 export has its own tests in test_export.py)
FAST = ('--legacy-exporter', '--no-simplify')


def export(config: Path, ckpt: Path, out: Path, *flags: str) -> int:
    """``perception export CONFIG CKPT --format onnx --out OUT FLAGS``, in
    process (the CLI's own main)."""
    return main(['export', str(config), str(ckpt), '--format', 'onnx',
                 '--out', str(out), *flags])


def export_subprocess(config: Path, ckpt: Path, out: Path, *flags: str
                      ) -> subprocess.CompletedProcess:
    """The same through the installed console script."""
    return subprocess.run([PERCEPTION, 'export', str(config), str(ckpt),
                           '--format', 'onnx', '--out', str(out), *flags],
                          capture_output=True, text=True, timeout=300)


def precision_report(bundle: Path) -> dict:
    return json.loads((bundle / 'precision.json').read_text())


def check_passed_bundle(bundle: Path, precision: str) -> dict:
    """The files of a passed FP16/INT8 export; returns precision.json."""
    import onnx

    from perception.deploy.manifest import load_bundle
    for name in ('model.onnx', 'model_fp32.onnx', 'manifest.json',
                 'parity.json', 'oplint.json', 'precision.json'):
        assert (bundle / name).is_file(), name
    assert not list(bundle.glob('*.rejected.onnx'))
    loaded = load_bundle(str(bundle))  # checks model.onnx's sha256
    assert loaded.manifest.precision == precision
    report = precision_report(bundle)
    assert report['passed'] and report['precision'] == precision
    assert report['oplint']['passed']
    model = onnx.load(str(bundle / 'model.onnx'))
    # every node of the shipped graph has its precision in the report, but
    # for the casts and Q/DQ pairs the conversion inserted
    added = [n.op_type for n in model.graph.node
             if n.name not in report['nodes']]
    assert set(added) <= {'Cast', 'QuantizeLinear', 'DequantizeLinear'}
    if precision == 'fp16':
        assert report['casts'] > 0 and 'Cast' in added
    assert set(report['nodes'].values()) <= {'fp32', 'fp16', 'int8'}
    convs = [n.name for n in model.graph.node if n.op_type == 'Conv']
    kinds = [report['nodes'][n] for n in convs]
    if precision == 'fp16':  # every conv in FP16
        assert convs and set(kinds) == {'fp16'}
    else:  # Q/DQ around most convs, zero points 0 (TensorRT's rule)
        assert kinds.count('int8') >= len(kinds) / 2
        assert report['max_abs_zero_point'] == 0
    gate = report['gate']
    assert gate['passed'] and gate['drop'] <= gate['max_drop']
    return report


def check_refused_bundle(bundle: Path, precision: str) -> dict:
    """A refused export: the bundle stays FP32, the candidate kept aside,
    precision.json with the failed gate. Returns precision.json."""
    from perception.deploy.manifest import load_bundle
    assert load_bundle(str(bundle)).manifest.precision == 'fp32'
    assert (bundle / f'model_{precision}.rejected.onnx').is_file()
    assert not (bundle / 'model_fp32.onnx').exists()
    report = precision_report(bundle)
    assert not report['passed'] and not report['gate']['passed']
    assert report['rejected_model'] == f'model_{precision}.rejected.onnx'
    return report
