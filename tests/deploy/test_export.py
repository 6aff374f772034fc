"""`perception export` on every detection config (shrunk to a tiny width
and input so it runs in seconds, otherwise the config's own parts and
pipelines): a bundle whose model ONNX Runtime runs as PyTorch does (the
parity report's figures are checked here against a fresh session), the
manifest read back by load_bundle, no data path of the checkpoint's config
in any bundle file, and one-line errors for bad input."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from perception import apis
from perception.cli import main
from perception.deploy.export import ExportError
from perception.deploy.manifest import load_bundle

REPO = Path(__file__).resolve().parents[2]
ALL = sorted(glob.glob(str(REPO / 'configs/detection/*.py')))


def _family(config: str) -> tuple:
    """What makes a shrunk config's graph differ from another's: backbone,
    input channels and preprocessing, strides, classes (pretrained twins
    and the same model on another dataset share a family)."""
    from perception.engine.config import load_config
    model = load_config(config).model
    pre = model.get('data_preprocessor') or {}
    return (model.backbone.type, model.backbone.get('in_chans', 3),
            tuple(model.head.get('strides', ())), tuple(model.class_names),
            repr(pre.get('windows')))


def _split_by_family(configs: list[str]) -> tuple[list[str], list[str]]:
    first, rest, seen = [], [], set()
    for config in configs:
        key = _family(config)
        (rest if key in seen else first).append(config)
        seen.add(key)
    return first, rest


#: one config per family runs by default, the others in the slow run
FIRST, REST = _split_by_family(ALL)
#: a patient name in a data path: no bundle file may hold it
PHI = 'DOE_JANE_19700101'
PERCEPTION = str(Path(sys.executable).parent / 'perception')

DIMS = (16, 24, 32, 48)


def _tiny_config(tmp: Path, config: str) -> Path:
    """``config`` with a two-block backbone, 16-channel neck and head and a
    128x64 test input; everything else (preprocessing, classes, strides,
    test_cfg) as the config has it."""
    from perception.engine.config import load_config
    model = load_config(config).model
    backbone = model.backbone
    if backbone.type == 'VisionTransformer':
        tiny_backbone = dict(
            _delete_=True, type='VisionTransformer', img_size=(64, 128),
            arch=dict(embed_dim=32, depth=2, num_heads=2), patch_size=16,
            in_chans=backbone.in_chans, pos_embed_type=backbone.pos_embed_type)
        tiny_neck = dict(in_channels=32, out_channels=16)
    else:
        tiny_backbone = dict(
            _delete_=True, type='ConvNeXt', in_chans=backbone.in_chans,
            arch=dict(depths=(1, 1, 1, 1), dims=DIMS),
            out_indices=tuple(backbone.out_indices))
        tiny_neck = dict(in_channels=[DIMS[i] for i in backbone.out_indices],
                         out_channels=16)
    path = tmp / f'tiny_{os.path.basename(config)}'
    path.write_text(f'''_base_ = ['{config}']
model = dict(backbone={tiny_backbone!r}, neck={tiny_neck!r},
             head=dict(in_channels=16, feat_channels=16))
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='PackInputs')]))
''')
    return path


def _checkpoint(tmp: Path, config: Path, with_meta: bool = False) -> Path:
    """Weights of the config's model; class scores pushed up to 0.3..0.7
    so that there are detections above the parity check's 0.3. The meta
    holds the pretrained_cfg (as PretrainedCfgHook writes it) when asked
    and for CT configs, whose slices-as-channels only the dataset knows."""
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
    # what perception train stores: the resolved config, data paths and all
    meta = {'cfg': f"test_dataloader = dict(dataset=dict(data_root='/data/{PHI}'))"}
    dataset = cfg.test_dataloader.dataset
    slices = dataset.get('num_slices')
    if with_meta or slices:
        offsets = [dataset.get('slice_stride', 1) * (i - slices // 2)
                   for i in range(slices)] if slices else []
        record = PretrainedCfg.from_model(model, _test_pipeline(cfg),
                                          class_names=model.class_names,
                                          slice_offsets=offsets)
        record.extra['from'] = 'checkpoint'
        meta['pretrained_cfg'] = record.to_dict()
    path = tmp / f'{config.stem}.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return path


def _fresh_parity(bundle: Path) -> float:
    """Max abs error of a new ONNX Runtime session on the stored reference."""
    import onnxruntime as ort
    loaded = load_bundle(str(bundle))
    inputs, outputs = loaded.reference()
    session = ort.InferenceSession(loaded.onnx_path,
                                   providers=['CPUExecutionProvider'])
    got = dict(zip(loaded.manifest.outputs['names'],
                   session.run(None, inputs)))
    return max(float(np.abs(got[k] - v).max()) for k, v in outputs.items())


def _export_and_check(tmp_path: Path, config: str, *extra: str,
                      with_meta: bool = False) -> dict:
    tiny = _tiny_config(tmp_path, config)
    ckpt = _checkpoint(tmp_path, tiny, with_meta=with_meta)
    out = tmp_path / 'bundle'
    assert main(['export', str(tiny), str(ckpt), '--out', str(out), *extra]) == 0
    parity = json.loads((out / 'parity.json').read_text())
    lint = json.loads((out / 'oplint.json').read_text())
    assert parity['passed'] and parity['checker']['passed'] and lint['passed']
    assert parity['detections'] > 0 and parity['unmatched'] == 0
    for path in out.rglob('*'):
        if path.is_file():
            assert PHI.encode() not in path.read_bytes(), path
    loaded = load_bundle(str(out))
    from perception.engine.config import load_config
    model = load_config(str(tiny)).model
    assert loaded.pretrained_cfg.input_size == (model.backbone.in_chans, 64,
                                                128)
    assert loaded.pretrained_cfg.class_names == list(model.class_names)
    assert loaded.manifest.exporter['path'] in ('dynamo', 'legacy')
    assert _fresh_parity(out) <= 1e-3 * max(
        w['scale'] for w in parity['worst'].values()) if parity['worst'] \
        else True
    return dict(parity=parity, lint=lint, manifest=loaded.manifest, out=out)


@pytest.mark.parametrize('config', FIRST, ids=os.path.basename)
def test_every_config_exports_dynamic_batch_nms_outside(tmp_path, config):
    result = _export_and_check(tmp_path, config)
    manifest = result['manifest']
    assert manifest.dynamic == 'batch' and manifest.input['shape'][0] == 'batch'
    assert manifest.outputs['names'] == ['boxes', 'scores']
    assert [(r['batch'], r['height'], r['width'])
            for r in result['parity']['runs']] == [(1, 64, 128), (2, 64, 128)]
    assert manifest.exporter['path'] == 'dynamo'  # the default path ran
    assert manifest.opset == 18


@pytest.mark.slow
@pytest.mark.parametrize('config', REST, ids=os.path.basename)
def test_the_other_configs_of_each_family_export(tmp_path, config):
    _export_and_check(tmp_path, config)


def _one(name: str) -> str:
    return next(p for p in ALL if name in os.path.basename(p))


def test_static_batch_with_nms_in_the_graph(tmp_path):
    result = _export_and_check(tmp_path, _one('convnext-atto_fpn_24e_kitti'),
                               '--dynamic', 'none', '--nms', 'onnx',
                               '--max-per-img', '20', with_meta=True)
    manifest = result['manifest']
    # the checkpoint's own record, not one rebuilt from the config
    assert manifest.source['pretrained_cfg_from'] == 'checkpoint meta'
    assert manifest.pretrained.extra['from'] == 'checkpoint'
    assert manifest.input['shape'] == [1, 3, 64, 128]
    assert manifest.outputs['names'] == ['num_dets', 'det_boxes',
                                         'det_scores', 'det_labels']
    assert manifest.outputs['shapes']['det_boxes'] == [1, 20, 4]
    assert 'NonMaxSuppression' in result['lint']['op_counts']
    assert result['lint']['op_counts']['TopK'] == 1
    loaded = load_bundle(str(result['out']))
    _, outputs = loaded.reference()
    n = int(outputs['num_dets'][0])
    assert 0 < n <= 20 and (outputs['det_labels'][0][n:] == -1).all()


@pytest.mark.slow
@pytest.mark.parametrize('config', ALL, ids=os.path.basename)
@pytest.mark.parametrize('mode', [('--dynamic', 'none'), ('--nms', 'onnx')])
def test_other_modes_for_every_config(tmp_path, config, mode):
    _export_and_check(tmp_path, config, *mode)


def test_dynamic_height_and_width_where_the_backbone_allows(tmp_path):
    from PIL import Image
    images = tmp_path / 'frames'
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate([(200, 100), (150, 90)]):  # (W, H) of sources
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3),
                                     np.uint8)).save(images / f'{i}.png')
    result = _export_and_check(tmp_path, _one('convnext-atto_fpn_24e_kitti'),
                               '--dynamic', 'batch,hw', '--legacy-exporter',
                               '--parity-images', str(images))
    runs = result['parity']['runs']
    assert {(r['height'], r['width']) for r in runs} == {(64, 128), (32, 64)}
    assert result['manifest'].input['shape'] == ['batch', 3, 'height', 'width']
    assert result['manifest'].outputs['shapes']['boxes'] == [
        'batch', 'num_priors', 4]
    # the frames ran at the export size (fit into 128x64, padded), noise
    # at the other size
    assert {(r['height'], r['inputs']) for r in runs} == {
        (64, 'images'), (32, 'random normal')}
    assert result['manifest'].exporter['path'] == 'legacy'
    assert result['manifest'].exporter['fallback_reason'].startswith('asked')


def test_vit_refuses_dynamic_height_and_width(tmp_path):
    tiny = _tiny_config(tmp_path, _one('vit-tiny-p16_simplefpn_24e_kitti'))
    with pytest.raises(ExportError, match='position embedding.*--dynamic '
                       'batch'):
        apis.export(str(tiny), str(_checkpoint(tmp_path, tiny)),
                    out=str(tmp_path / 'b'), dynamic='batch,hw')


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PERCEPTION, 'export', *args], capture_output=True,
                          text=True, timeout=300, cwd=str(REPO))


def test_a_failed_gate_is_one_line_and_exit_2(tmp_path):
    tiny = _tiny_config(tmp_path, _one('convnext-atto_fpn_24e_kitti'))
    ckpt = _checkpoint(tmp_path, tiny)
    done = _run(str(tiny), str(ckpt), '--out', str(tmp_path / 'b'),
                '--atol-rel', '0', '--legacy-exporter', '--no-simplify')
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'failed verification: parity FAILED' in lines[0]
    assert 'tolerance 0)' in lines[0]
    # the reports stay for the user to read
    assert not json.loads((tmp_path / 'b' / 'parity.json').read_text())[
        'passed']


def test_bad_inputs_are_one_line_and_exit_2(tmp_path):
    tiny = _tiny_config(tmp_path, _one('convnext-atto_fpn_24e_kitti'))
    other = _tiny_config(tmp_path, _one('vit-tiny-p16_simplefpn_24e_kitti'))
    ckpt = _checkpoint(tmp_path, tiny)
    cases = {
        'missing': ([str(tiny), str(tmp_path / 'none.pth')], 'not found'),
        'wrong config': ([str(other), str(ckpt)], 'does not fit'),
    }
    for name, (args, words) in cases.items():
        done = _run(*args, '--out', str(tmp_path / name.replace(' ', '_')))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (name, done.stderr)
        assert words in lines[0], (name, lines[0])


def test_options_out_of_range_are_refused_before_loading(tmp_path):
    with pytest.raises(ExportError, match='trt10.3 parses opsets 9..20'):
        apis.export('any.py', 'any.pth', out=str(tmp_path), opset=21)
    with pytest.raises(ExportError, match='--nms'):
        apis.export('any.py', 'any.pth', out=str(tmp_path), nms='efficient')


def test_lora_checkpoints_export_merged(tmp_path):
    """A LoRA fine-tune's checkpoint (base + lora_A/lora_B) exports as plain
    layers whose outputs equal the unmerged model's."""
    from perception.deploy.export import load_detector
    from perception.engine.config import load_config
    from perception.registry import MODELS
    tiny = _tiny_config(tmp_path, _one('vit-tiny-p16_simplefpn_24e_kitti'))
    tiny.write_text(tiny.read_text() + "model.update(backbone=dict(model['backbone'], "
                    "lora=dict(rank=2, alpha=4)))\n")
    ckpt = _checkpoint(tmp_path, tiny)
    state = torch.load(ckpt)
    lora = [k for k in state['state_dict'] if 'lora_B' in k]
    assert lora  # the checkpoint holds the adapters
    for key in lora:  # a trained update (zero at initialisation)
        state['state_dict'][key] = torch.randn_like(state['state_dict'][key])
    torch.save(state, ckpt)
    cfg = load_config(str(tiny)).model.to_dict()
    unmerged = MODELS.build(cfg).eval()
    unmerged.load_state_dict(state['state_dict'])
    merged, _, _ = load_detector(str(tiny), str(ckpt))
    assert not any('lora' in name for name, _ in merged.named_parameters())
    result = apis.export(str(tiny), str(ckpt), out=str(tmp_path / 'b'),
                         legacy=True, simplify=False)
    assert result.parity['passed']
    inputs, outputs = load_bundle(str(tmp_path / 'b')).reference()
    with torch.no_grad():
        boxes, scores = unmerged(torch.from_numpy(inputs['inputs']),
                                 mode='tensor')
    assert np.abs(outputs['scores'] - scores.numpy()).max() < 1e-4
    assert np.abs(outputs['boxes'] - boxes.numpy()).max() < 1e-2


def test_a_failing_dynamo_export_falls_back_to_legacy_with_the_reason(
        tmp_path, monkeypatch):
    """torch.export refusing a model (here made to refuse) is not fatal: the
    legacy exporter runs and the manifest says why."""
    real = torch.onnx.export

    def dynamo_refuses(*args, dynamo=True, **kwargs):
        if dynamo:
            raise RuntimeError('\x1b[96mData-dependent branching\x1b[0m\n'
                               'more detail')
        return real(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, 'export', dynamo_refuses)
    tiny = _tiny_config(tmp_path, _one('convnext-atto_fpn_24e_kitti'))
    result = apis.export(str(tiny), str(_checkpoint(tmp_path, tiny)),
                         out=str(tmp_path / 'b'), simplify=False)
    exporter = load_bundle(str(tmp_path / 'b')).manifest.exporter
    assert result.parity['passed'] and exporter['path'] == 'legacy'
    assert exporter['fallback_reason'] == ('RuntimeError: Data-dependent '
                                           'branching')
