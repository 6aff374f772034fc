"""The bundle manifest: round trips through JSON and the model's
metadata_props, and one-line BundleErrors naming the file and field for
missing, corrupt or mismatching bundles (also through the command line)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from perception.data import PretrainedCfg
from perception.deploy.manifest import (
    MANIFEST_FILE,
    METADATA_KEY,
    MODEL_FILE,
    BundleError,
    Manifest,
    load_bundle,
    sha256_file,
)

PERCEPTION = str(Path(sys.executable).parent / 'perception')


def _pretrained() -> PretrainedCfg:
    return PretrainedCfg(architecture='convnext_atto', input_size=(3, 64, 96),
                         resize='fit', pad_size_divisor=32,
                         mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375],
                         class_names=['car', 'pedestrian'], num_classes=2)


def _manifest() -> Manifest:
    manifest = Manifest(pretrained_cfg=_pretrained(), dynamic='batch',
                        opset=18, exporter=dict(path='dynamo'))
    manifest.input['shape'] = ['batch', 3, 64, 96]
    manifest.outputs['shapes'] = {'boxes': ['batch', 126, 4],
                                  'scores': ['batch', 126, 2]}
    return manifest


def _bundle(folder: Path, manifest: Manifest | None = None) -> Path:
    """A graph with the detector's interface: inputs -> boxes, scores."""
    manifest = manifest or _manifest()
    nodes = [helper.make_node('Identity', ['b_in'], ['boxes'], name='id0'),
             helper.make_node('Identity', ['s_in'], ['scores'], name='id1')]
    graph = helper.make_graph(
        nodes, 'g',
        [helper.make_tensor_value_info('inputs', TensorProto.FLOAT,
                                       ['batch', 3, 64, 96])],
        [helper.make_tensor_value_info('boxes', TensorProto.FLOAT,
                                       ['batch', 126, 4]),
         helper.make_tensor_value_info('scores', TensorProto.FLOAT,
                                       ['batch', 126, 2])],
        initializer=[])
    graph.node.insert(0, helper.make_node('Constant', [], ['b_in'],
                                          value_floats=[0.0], name='c0'))
    graph.node.insert(1, helper.make_node('Constant', [], ['s_in'],
                                          value_floats=[0.0], name='c1'))
    model = helper.make_model(graph)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, manifest.metadata_json()
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / MODEL_FILE)
    manifest.sha256 = sha256_file(str(folder / MODEL_FILE))
    manifest.write(str(folder))
    return folder


def test_round_trip_through_json_and_files(tmp_path):
    manifest = _manifest()
    again = Manifest.from_dict(json.loads(json.dumps(manifest.to_dict())))
    assert again == manifest
    manifest.write(str(tmp_path))
    assert Manifest.read(str(tmp_path)) == manifest
    assert again.pretrained == _pretrained()
    assert manifest.created.endswith('Z')  # UTC


def test_load_bundle_folder_and_bare_onnx(tmp_path):
    folder = _bundle(tmp_path / 'b')
    bundle = load_bundle(str(folder))
    assert bundle.root == str(folder)
    assert bundle.pretrained_cfg.class_names == ['car', 'pedestrian']
    assert bundle.manifest.sha256 == sha256_file(bundle.onnx_path)
    # the same model alone: the manifest comes from its metadata_props
    bare = tmp_path / 'alone.onnx'
    bare.write_bytes((folder / MODEL_FILE).read_bytes())
    alone = load_bundle(str(bare))
    assert alone.root is None and alone.manifest.sha256 == ''
    assert alone.manifest.to_dict() | dict(sha256='') == \
        bundle.manifest.to_dict() | dict(sha256='')


@pytest.mark.parametrize('field, value, words', [
    ('postprocess', dict(nms='efficient', score_thr=0.1, nms_iou=0.5,
                         max_per_img=10), 'field postprocess.nms'),
    ('dynamic', 'all', 'field dynamic'),
    ('format_version', 99, 'format_version 99'),
    ('colour', 'blue', "unknown field(s) ['colour']"),
])
def test_bad_fields_name_the_file_and_field(tmp_path, field, value, words):
    values = _manifest().to_dict()
    values[field] = value
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(values))
    with pytest.raises(BundleError) as info:
        Manifest.read(str(tmp_path))
    assert words in str(info.value) and MANIFEST_FILE in str(info.value)
    assert '\n' not in str(info.value)


def test_missing_corrupt_and_mismatching_bundles(tmp_path):
    with pytest.raises(BundleError, match='not a deploy bundle'):
        load_bundle(str(tmp_path))
    folder = _bundle(tmp_path / 'b')
    (folder / MANIFEST_FILE).write_text('{"task": ')
    with pytest.raises(BundleError, match='manifest.json.*not valid JSON'):
        load_bundle(str(folder))
    # outputs renamed in the manifest: it belongs to another model
    manifest = _manifest()
    manifest.outputs['names'] = ['det_boxes', 'det_scores']
    manifest.outputs['shapes'] = {'det_boxes': [1], 'det_scores': [1]}
    folder = _bundle(tmp_path / 'c')
    manifest.sha256 = sha256_file(str(folder / MODEL_FILE))
    manifest.write(str(folder))
    with pytest.raises(BundleError, match="outputs.names.*another model"):
        load_bundle(str(folder))
    # a static dim that differs
    manifest = _manifest()
    manifest.input['shape'] = ['batch', 3, 32, 96]
    folder = _bundle(tmp_path / 'd')
    manifest.sha256 = sha256_file(str(folder / MODEL_FILE))
    manifest.write(str(folder))
    with pytest.raises(BundleError, match=r'input.shape is \[.batch., 3, 32'):
        load_bundle(str(folder))
    # the model changed after export
    folder = _bundle(tmp_path / 'e')
    with open(folder / MODEL_FILE, 'ab') as f:
        f.write(b'\x00')
    with pytest.raises(BundleError, match='field sha256'):
        load_bundle(str(folder))


def test_cli_reports_a_corrupt_onnx_and_a_mismatching_manifest(tmp_path):
    """One line on stderr, exit 2, from a command that loads bundles."""
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'\x08\x07this is not a protobuf' * 10)
    folder = _bundle(tmp_path / 'b')
    values = json.loads((folder / MANIFEST_FILE).read_text())
    values['input']['name'] = 'images'
    (folder / MANIFEST_FILE).write_text(json.dumps(values))
    frames = tmp_path / 'frames'
    frames.mkdir()
    for model, words in ((corrupt, 'not a readable ONNX model'),
                         (folder, "input.name 'images'")):
        done = subprocess.run([PERCEPTION, 'infer', str(model), str(frames),
                               '--out', str(tmp_path / 'out')],
                              capture_output=True, text=True, timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert words in lines[0]
