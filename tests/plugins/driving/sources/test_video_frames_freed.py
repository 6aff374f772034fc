"""Decoded PyAV frames are freed as soon as the consumer moves on, not
left for the cyclic garbage collector: reading ``frame.side_data`` (the
display matrix, ``orientation.frame_orientation``) ties a PyAV 18 frame and
its side-data container in a reference cycle, so ``VideoSource`` reads it
on key frames and when ``frame.rotation`` changes only (7-19% more CPU
than a plain PyAV loop when read on every frame; docs/benchmarks.md)."""
import gc

from driving_fixtures import write_video

from perception.sources import open_source


def test_frames_do_not_wait_for_the_cyclic_gc(tmp_path):
    path = write_video(tmp_path / 'clip.mp4', n=40, fps=10)
    with open_source(str(path)) as source:  # imports and registries done
        next(iter(source))
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # only our own collection runs
    try:
        with open_source(str(path)) as source:
            count = sum(1 for _ in source)
        leftover = gc.collect()
    finally:
        if enabled:
            gc.enable()
    assert count == 40
    # reading side data on every frame left 3 objects per frame (VideoFrame,
    # SideDataContainer, list): 120+; now only the key frame's
    assert leftover < 20, leftover
