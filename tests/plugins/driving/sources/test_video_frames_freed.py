"""Decoded PyAV frames are freed as soon as the consumer moves on, not
left for the cyclic garbage collector. PyAV's ``frame.side_data`` caches
its container on the frame and the container points back at it, so every
frame read that way (and its decoder buffer) waited for the cyclic GC
(7-19% more CPU than a plain PyAV loop; docs/benchmarks.md).
``orientation.frame_side_data`` builds its own container instead, so the
display matrix is read on every frame (here: a rotated clip, where every
frame carries one, and MJPEG, every frame a key frame)."""
import gc

import av
import pytest
from driving_fixtures import av_frame, coded_frame, write_video

from perception.sources import open_source


def write_rotated(path, n):
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 96, 'yuv420p'
        stream.options = {'preset': 'ultrafast'}
        stream.set_display_rotation(90)
        for i in range(n):
            for packet in stream.encode(av_frame(coded_frame(i, 96, 128))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize('kind', ['h264', 'rotated', 'mjpeg'])
def test_frames_do_not_wait_for_the_cyclic_gc(tmp_path, kind):
    if kind == 'rotated':
        path = write_rotated(tmp_path / 'clip.mp4', n=40)
    else:
        path = write_video(tmp_path / f'clip_{kind}.mkv', n=40, fps=10,
                           codec='mjpeg' if kind == 'mjpeg' else 'libx264')
    with open_source(str(path)) as source:  # imports and registries done
        next(iter(source))
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # only our own collection runs
    try:
        with open_source(str(path)) as source:
            frames = [f.meta.get('rotation', 0) for f in source]
        leftover = gc.collect()
    finally:
        if enabled:
            gc.enable()
    assert len(frames) == 40
    assert set(frames) == {90 if kind == 'rotated' else 0}
    # frame.side_data on every frame left 3+ objects per frame (VideoFrame,
    # SideDataContainer, list): 120+
    assert leftover < 10, leftover
