"""One module that opens every kind of camera source through
``open_source`` from files and servers the tests create: a video, an image
folder with a sidecar CSV, an MJPEG stream over HTTP, an RTSP stream, a
ROS 1 bag, a ROS 2 bag and a two-camera rig. Details live in the
per-kind modules (test_video.py, test_images.py, test_streams.py,
test_bags.py, test_rig.py)."""
import numpy as np
import pytest
from driving_fixtures import (
    camera_yaml,
    coded_frame,
    frame_code,
    image_message,
    mosaic_rggb,
    stripes_are_rgb,
    write_bag,
    write_image_folder,
    write_rig,
    write_video,
)

import perception_driving
from perception.sources import Frame, FrameSet, SourceError, open_source, registered_openers


def first_frames(uri, n=3, **options):
    with open_source(uri, **options) as source:
        frames = []
        for item in source:
            frames.append(item)
            if len(frames) == n:
                break
    return source, frames


def check_camera_frames(frames, numbers, clock):
    assert all(isinstance(f, Frame) for f in frames)
    assert all(f.image.dtype == np.uint8 and f.image.ndim == 3 and
               f.image.shape[2] == 3 for f in frames)
    assert all(stripes_are_rgb(f.image) for f in frames)
    assert [frame_code(f.image) for f in frames] == numbers
    assert all(f.meta['clock'] == clock for f in frames)
    times = [f.timestamp_ns for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))


def test_re_exported_and_registered():
    assert perception_driving.open_source is open_source
    names = {type(o).__name__: o.priority for o in registered_openers()}
    for name in ('VideoOpener', 'ImageFolderOpener', 'StreamOpener',
                 'BagOpener', 'RigOpener'):
        assert names[name] == 200
    assert names['ImageFileOpener'] == 0


def test_video_file(tmp_path):
    path = write_video(tmp_path / 'clip.mkv', n=5, fps=20)
    source, frames = first_frames(path, n=5)
    assert type(source).__name__ == 'VideoSource'
    check_camera_frames(frames, [0, 1, 2, 3, 4], 'pts')
    assert frames[1].timestamp_ns == 50_000_000


def test_image_folder_with_sidecar(tmp_path):
    folder = write_image_folder(tmp_path / 'imgs', n=3,
                                times_ns=[5, 1_000_005, 2_000_005])
    source, frames = first_frames(folder)
    assert type(source).__name__ == 'ImageFolderSource'
    check_camera_frames(frames, [0, 1, 2], 'sidecar')
    assert frames[2].timestamp_ns == 2_000_005


def test_mjpeg_http_stream(mjpeg_server):
    server = mjpeg_server(fps=30)
    source, frames = first_frames(server.url, buffering='fifo', timeout_s=10)
    assert type(source).__name__ == 'StreamSource'
    check_camera_frames(frames, [0, 1, 2], 'arrival')


def test_rtsp_stream(rtsp_server):
    source, frames = first_frames(rtsp_server, timeout_s=20)
    assert type(source).__name__ == 'StreamSource'
    assert all(f.image.shape == (240, 320, 3) for f in frames)
    assert all(f.image.mean() > 30 for f in frames)  # bars, not black


@pytest.mark.parametrize('version', ['ros1', 'ros2'])
def test_ros_bags(tmp_path, version):
    rgb = coded_frame(7, 48, 64)
    bag = write_bag(tmp_path / ('b.bag' if version == 'ros1' else 'b2'),
                    version, {
        '/rgb': [image_message(10 + i, coded_frame(i, 48, 64), 'rgb8')
                 for i in range(3)],
        '/mono16': [image_message(20, (rgb.mean(-1) * 257).astype(np.uint16),
                                  'mono16')],
        '/bayer': [image_message(30, mosaic_rggb(rgb), 'bayer_rggb8')],
        '/jpeg': [image_message(40, rgb, 'jpeg')]})
    source, frames = first_frames(bag, topic='/rgb')
    assert type(source).__name__ == 'BagSource'
    check_camera_frames(frames, [0, 1, 2], 'header')
    for topic in ('/mono16', '/bayer', '/jpeg'):
        _, (frame, ) = first_frames(bag, n=1, topic=topic)
        assert frame_code(frame.image) == 7, topic
    if version == 'ros2':  # the folder, its metadata.yaml or its storage
        _, frames = first_frames(bag / 'metadata.yaml', topic='/rgb')
        assert len(frames) == 3


def test_two_camera_rig(tmp_path):
    write_video(tmp_path / 'front.mp4', n=4, fps=10)
    write_image_folder(tmp_path / 'side', n=4, size=(64, 48), times_ns=[
        7_000_000_000 + i * 100_000_000 + 2_000_000 for i in range(4)])
    rig = write_rig(tmp_path / 'car.rig.yaml', {
        'front': camera_yaml('front.mp4', 128, 96),
        'side': camera_yaml('side', 64, 48, time_offset_ns=-7_000_000_000)},
        sync={'tolerance_ms': 5})
    source, sets = first_frames(rig, n=10, undistort=True)
    assert type(source).__name__ == 'RigSource'
    assert len(sets) == 4 and all(isinstance(s, FrameSet) for s in sets)
    assert [sorted(s.frames) for s in sets] == [['front', 'side']] * 4
    assert all(s.frames['front'].meta['undistorted'] for s in sets)


def test_unknown_uri_lists_openers(tmp_path):
    with pytest.raises(SourceError, match='No source opener accepts.*'
                       'VideoOpener'):
        open_source(tmp_path / 'notes.txt')
