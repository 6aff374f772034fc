"""``perception deploy doctor`` and ``deploy check`` on a machine without
TensorRT (this one): doctor says exactly that and exits 0; check stops with
the reason (exit 2, one line) and leaves a report saying why; export
--format tensorrt writes the ONNX bundle and says where to build; the
``tensorrt`` backend is registered and says what it needs."""
from __future__ import annotations

import json

import pytest
from deploy_helpers import make_bundle, pretrained_cfg, tiny_detector

from perception.cli import main
from perception.deploy.doctor import _l4t, jetpack_of
from perception.deploy.manifest import Manifest


def _no_tensorrt():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return
    pytest.skip('tensorrt is importable here: these tests are for machines '
                'without it')


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    model = tiny_detector()
    out = make_bundle(tmp_path_factory.mktemp('cli') / 'b', model,
                      pretrained_cfg(model))
    manifest = Manifest.read(str(out))
    manifest.input['export_size'] = [64, 96]
    manifest.write(str(out))
    return out


def test_doctor_without_tensorrt_says_so_and_exits_0(capsys):
    _no_tensorrt()
    assert main(['deploy', 'doctor']) == 0
    out = capsys.readouterr().out
    assert 'TensorRT: not installed' in out
    assert 'missing: TensorRT: on a Jetson it comes with JetPack' in out
    assert 'not ready for TensorRT engines: TensorRT is not installed here' \
        in out
    assert main(['deploy', 'doctor', '--json']) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts['tensorrt'] is None and facts['ready'] is False


def test_l4t_release_to_jetpack(tmp_path):
    release = tmp_path / 'nv_tegra_release'
    release.write_text('# R36 (release), REVISION: 4.3, GCID: 38968081, '
                       'BOARD: generic, EABI: aarch64\n')
    assert _l4t(str(release)) == dict(l4t='36.4.3',
                                      jetpack='6.x (TensorRT 10.3)')
    assert jetpack_of('38.2.0') == '7.x (TensorRT 11)'
    assert _l4t(str(tmp_path / 'absent')) == {}


def test_check_without_tensorrt_stops_with_the_reason(bundle, capsys):
    _no_tensorrt()
    report_path = bundle / 'check.json'
    assert main(['deploy', 'check', str(bundle), '--out',
                 str(report_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert 'deploy check stopped: TensorRT is not installed here' in err[0]
    report = json.loads(report_path.read_text())
    assert report['status'] == 'stopped'
    assert 'TensorRT is not installed' in report['reason']
    assert report['device']['tensorrt'] is None
    assert report['bundle'] == 'b'


def test_build_and_backend_without_tensorrt(bundle, capsys):
    _no_tensorrt()
    assert main(['deploy', 'build', str(bundle), '--print-trtexec']) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith('trtexec --onnx=')
    assert f'perception deploy build {bundle}' in captured.err
    assert main(['infer', str(bundle), str(bundle), '--backend',
                 'tensorrt']) == 2
    assert 'TensorRT is not installed here' in capsys.readouterr().err


def test_export_precision_flags_are_checked_first(capsys, tmp_path):
    args = ['export', str(tmp_path / 'absent.py'), str(tmp_path / 'x.pth')]
    assert main(args + ['--int8']) == 2
    assert '--int8 needs --calib-data' in capsys.readouterr().err
    assert main(args + ['--fp16', '--calib-data', 'train']) == 2
    assert 'go with --int8' in capsys.readouterr().err
    assert main(args + ['--int8', '--calib-data', 'train',
                        '--calib-images', '0']) == 2
    assert '--calib-images 0: give at least 1' in capsys.readouterr().err
