"""`perception infer` end to end with an exported model: a video (annotated
MP4 with the input's frame count), an image folder (a picture per image), an
MJPEG stream on loopback through a reconnect, ended by SIGINT with every
file complete; bad models and sources are one-line errors (exit 2), and
credentials in stream URLs never reach the outputs."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from perception import apis
from perception.deploy.infer import InferRun
from perception.deploy.predictor import load_predictor
from perception.deploy.writers import redact_uri
from perception.registry import POSTPROCESSORS
from perception.sources import Frame, FrameSource

pytest.importorskip('onnxruntime')
av = pytest.importorskip('av', reason='video files need PyAV (driving extra)')
pytest.importorskip('perception_driving', reason='video and stream sources '
                    'live in the driving plugin')
from driving_fixtures import write_image_folder, write_video  # noqa: E402
from driving_servers import MjpegServer  # noqa: E402

PERCEPTION = str(Path(sys.executable).with_name('perception'))


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_video_gives_an_annotated_mp4_with_every_frame(camera_bundle,
                                                       tmp_path):
    bundle, _, _ = camera_bundle
    video = write_video(tmp_path / 'front.mp4', n=12, fps=10, size=(128, 96))
    out = tmp_path / 'out'
    summary = apis.infer(str(bundle), str(video), out=str(out),
                         score_thr=0.2)
    assert summary['frames'] == 12 and summary['videos'] == {'front.mp4': 12}
    assert _video_frames(out / 'front.mp4') == 12
    data = json.loads((out / 'detections.json').read_text())
    assert [im['frame_index'] for im in data['images']] == list(range(12))
    times = [im['timestamp_ns'] for im in data['images']]
    assert times == [i * 100_000_000 for i in range(12)]
    assert {im['clock'] for im in data['images']} == {'pts'}
    assert [c['name'] for c in data['categories']] == ['car', 'pedestrian']
    assert len(data['annotations']) == summary['detections'] > 0
    for ann in data['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and x + w <= 128.01 and 0 <= y and y + h <= 96.01
        assert ann['score'] > 0.2
    assert data['summary']['frames'] == 12


def test_image_folder_gives_a_picture_per_image(camera_bundle, tmp_path):
    bundle, _, _ = camera_bundle
    folder = write_image_folder(tmp_path / 'left', n=3, size=(80, 60))
    out = tmp_path / 'out'
    summary = apis.infer(str(bundle), str(folder), out=str(out))
    assert summary['pictures'] == 3 and summary['videos'] == {}
    from PIL import Image
    for name in ('000000', '000001', '000002'):
        with Image.open(out / 'pictures' / f'{name}.jpg') as picture:
            assert picture.size == (80, 60)
    data = json.loads((out / 'detections.json').read_text())
    assert [im['file_name'] for im in data['images']] == [
        '000000.png', '000001.png', '000002.png']


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_mjpeg_stream_through_a_reconnect_then_sigint(camera_bundle,
                                                      tmp_path):
    bundle, _, _ = camera_bundle
    server = MjpegServer(fps=20, max_frames=2000, max_seconds=60).start()
    out = tmp_path / 'out'
    proc = subprocess.Popen(
        [PERCEPTION, 'infer', str(bundle), server.url, '--out', str(out),
         '--source-option', 'timeout_s=20', '--quiet'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: (out / 'cam0.mp4').exists(), 60), \
            proc.stderr.read() if proc.poll() is not None else 'no MP4'
        time.sleep(0.5)
        server.stop()  # the connection drops; the source reconnects
        time.sleep(0.5)
        server.start()
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    assert proc.returncode == 0, stderr
    assert 'infer (interrupted):' in stdout
    data = json.loads((out / 'detections.json').read_text())
    summary = data['summary']
    assert summary['interrupted'] is True and summary['frames'] > 5
    kinds = {e['kind'] for e in data['events']}
    assert 'reconnect' in kinds, data['events']
    assert 'reconnect' in stderr  # events are logged as they happen
    assert _video_frames(out / 'cam0.mp4') == summary['videos']['cam0.mp4'] \
        == summary['frames'] == len(data['images'])
    # every frame read before the signal is written (JSON and MP4)
    assert summary['source_stats']['frames'] == summary['frames']
    assert {im['clock'] for im in data['images']} == {'arrival'}


class _Frames(FrameSource):
    """``n`` synthetic camera frames (arrival clock: they go to an MP4);
    SIGINT to this process when the run asks for frame ``ctrl_c_before``."""

    def __init__(self, n: int, ctrl_c_before: int | None = None) -> None:
        super().__init__('synthetic://cam0')
        self.n, self.ctrl_c_before = n, ctrl_c_before

    def _iter_frames(self):
        rng = np.random.default_rng(0)
        for i in range(self.n):
            if i == self.ctrl_c_before:
                signal.raise_signal(signal.SIGINT)
            image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            yield Frame(image, i * 50_000_000, i, 'cam0',
                        dict(clock='arrival', ctrl_c_test=True))


class _CtrlCWhileWriting:
    """A post-processor (the POSTPROCESSORS contract) that sends SIGINT to
    this process while the run records its ``at``-th frame: after the
    frame's JSON record, before its MP4 frame is queued."""

    at = 0

    @classmethod
    def applies(cls, frame) -> bool:
        return bool(frame.meta.get('ctrl_c_test'))

    def __init__(self, out_dir: Path, class_names, **options) -> None:
        self.seen = 0

    def add(self, frame, sample) -> None:
        self.seen += 1
        if self.seen == type(self).at:
            signal.raise_signal(signal.SIGINT)

    def close(self) -> dict:
        return dict(frames=self.seen)


@pytest.fixture
def ctrl_c_post():
    POSTPROCESSORS.register_module(name='_CtrlCWhileWriting',
                                   module=_CtrlCWhileWriting, force=True)
    yield _CtrlCWhileWriting
    POSTPROCESSORS.module_dict.pop('_CtrlCWhileWriting', None)


@pytest.mark.parametrize('batch, ctrl_c_in', [(2, 'writing'),
                                              (3, 'reading')])
def test_ctrl_c_writes_every_frame_read_before_it(camera_bundle, tmp_path,
                                                  ctrl_c_post, batch,
                                                  ctrl_c_in):
    """SIGINT while frame 3 is being recorded (batch 2: frames 3 and 4 are
    predicted together) or while the run reads frame 5 (batch 3: frame 4
    waits for its batch): in both, the 4 frames read are in the JSON, the
    MP4 and the post-processor, and the run ends as interrupted."""
    bundle, _, _ = camera_bundle
    ctrl_c_post.at = 3 if ctrl_c_in == 'writing' else 0
    source = _Frames(10, ctrl_c_before=4 if ctrl_c_in == 'reading' else None)
    handler = signal.getsignal(signal.SIGINT)
    out = tmp_path / 'out'
    summary = InferRun(load_predictor(str(bundle)), str(out),
                       batch=batch).run(source, {})
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    assert summary['interrupted'] is True
    assert source.stats['frames'] == 4
    assert summary['frames'] == summary['videos']['cam0.mp4'] == 4
    assert _video_frames(out / 'cam0.mp4') == 4
    assert summary['postprocessors'] == {'_CtrlCWhileWriting': dict(frames=4)}
    data = json.loads((out / 'detections.json').read_text())
    assert [im['frame_index'] for im in data['images']] == [0, 1, 2, 3]
    assert {a['image_id'] for a in data['annotations']} <= {0, 1, 2, 3}


def test_bad_models_and_sources_are_one_line_errors(camera_bundle, tmp_path,
                                                    capsys):
    """Through the command's own entry point (what the console script
    runs; the SIGINT test above covers the script in a subprocess)."""
    from perception.cli import main
    bundle, _, _ = camera_bundle
    image = np.zeros((40, 60, 3), np.uint8)
    folder = tmp_path / 'images'
    folder.mkdir()
    from PIL import Image
    Image.fromarray(image).save(folder / 'a.png')
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(b'\x08\x07garbage' * 100)
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'model.onnx').write_bytes((bundle / 'model.onnx').read_bytes())
    manifest = json.loads((bundle / 'manifest.json').read_text())
    manifest['input']['name'] = 'images'
    (foreign / 'manifest.json').write_text(json.dumps(manifest))
    cases = [
        ((str(corrupt), str(folder)), 'corrupt.onnx'),
        ((str(foreign), str(folder)), 'input.name'),
        ((str(bundle), str(tmp_path / 'missing.mp4')), 'missing.mp4'),
        ((str(bundle), 'rtsp://user:secret@127.0.0.1:9/cam', '--source-option',
          'timeout_s=2', '--source-option', 'max_reconnects=0',
          '--out', str(tmp_path / 'rtsp')), 'rtsp://'),
    ]
    for args, named in cases:
        status = main(['infer', *args])
        captured = capsys.readouterr()
        assert status == 2, (args, captured.err)
        lines = captured.err.strip().splitlines()
        assert lines[-1].startswith('perception infer: error: '), lines
        assert named in lines[-1] and 'Traceback' not in captured.err
        assert 'secret' not in captured.err + captured.out
    for path in (tmp_path / 'rtsp').rglob('*'):
        if path.is_file():
            assert b'secret' not in path.read_bytes()


def test_redact_uri():
    assert redact_uri('rtsp://admin:pw@10.0.0.2:554/s and http://u@h/x') == \
        'rtsp://***@10.0.0.2:554/s and http://***@h/x'
    assert redact_uri('/data/drive/front.mp4') == '/data/drive/front.mp4'


def test_a_rig_gives_each_camera_its_own_outputs(camera_bundle, tmp_path):
    """Frame sets are split by camera: the video camera gets its MP4, the
    image-folder camera its pictures; every frame is in the JSON with its
    camera and clock."""
    from driving_fixtures import camera_yaml, write_rig
    bundle, _, _ = camera_bundle
    write_video(tmp_path / 'front.mp4', n=5, fps=10)
    write_image_folder(tmp_path / 'left', n=5, size=(64, 48),
                       times_ns=[i * 100_000_000 for i in range(5)])
    rig = write_rig(tmp_path / 'car.rig.yaml', {
        'front': camera_yaml('front.mp4', 128, 96),
        'left': camera_yaml('left', 64, 48)}, sync={'tolerance_ms': 5})
    out = tmp_path / 'out'
    summary = apis.infer(str(bundle), str(rig), out=str(out))
    assert summary['frames'] == 10
    assert summary['videos'] == {'front.mp4': 5} and summary['pictures'] == 5
    assert _video_frames(out / 'front.mp4') == 5
    data = json.loads((out / 'detections.json').read_text())
    cameras = [(im['camera'], im['clock']) for im in data['images']]
    assert sorted(set(cameras)) == [('front', 'pts'), ('left', 'sidecar')]
