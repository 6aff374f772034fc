"""open_source dispatch and the core image opener."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from perception.registry import SOURCES
from perception.sources import (
    Frame,
    FrameSource,
    ImageFileOpener,
    SourceError,
    SourceOpener,
    open_source,
    registered_openers,
)


def _write(path, array):
    Image.fromarray(array).save(path)
    return path


def test_core_image_opener_reads_folder_in_name_order(tmp_path):
    for i in (2, 0, 1):
        _write(tmp_path / f'f{i}.png', np.full((4, 5, 3), i * 10, np.uint8))
    opener = ImageFileOpener()
    assert opener.can_open(str(tmp_path))
    with opener.open(str(tmp_path), fps=4.0) as source:
        frames = list(source)
    assert [f.index for f in frames] == [0, 1, 2]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 10, 20]
    assert [f.timestamp_ns for f in frames] == [0, 250_000_000, 500_000_000]
    assert all(f.meta['clock'] == 'index' for f in frames)
    assert frames[0].image.shape == (4, 5, 3)
    assert frames[0].image.dtype == np.uint8
    assert source.events[-1].kind == 'eos'
    assert source.stats['frames'] == 3


def test_raw_keeps_16_bit(tmp_path):
    gray16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    Image.fromarray(gray16).save(tmp_path / 'a.png')
    with ImageFileOpener().open(str(tmp_path / 'a.png'), raw=True) as source:
        (frame, ) = list(source)
    assert frame.image.dtype == np.uint16
    np.testing.assert_array_equal(frame.image, gray16)


def test_corrupt_image_is_an_event_not_a_frame(tmp_path):
    _write(tmp_path / 'a.png', np.zeros((2, 2, 3), np.uint8))
    (tmp_path / 'b.png').write_bytes(b'not a png')
    with ImageFileOpener().open(str(tmp_path)) as source:
        frames = list(source)
    assert len(frames) == 1
    corrupt = [e for e in source.events if e.kind == 'corrupt']
    assert len(corrupt) == 1 and 'b.png' in corrupt[0].detail
    assert source.stats['corrupt'] == 1


def test_open_source_names_the_uri_when_nothing_accepts_it(tmp_path):
    missing = tmp_path / 'nothing.xyz'
    with pytest.raises(SourceError) as info:
        open_source(missing)
    message = str(info.value)
    assert str(missing) in message and 'does not exist' in message
    assert 'ImageFileOpener' in message


def test_highest_priority_opener_wins(tmp_path):
    _write(tmp_path / 'a.png', np.zeros((2, 2, 3), np.uint8))

    class Marker(FrameSource):
        def _iter_frames(self):
            yield Frame(np.zeros((1, 1, 3), np.uint8), 0, 0)

    class EagerOpener(SourceOpener):
        priority = 10_000

        def can_open(self, uri):
            return uri.endswith('a.png')

        def open(self, uri, **options):
            return Marker(uri)

    SOURCES.register_module(module=EagerOpener)
    try:
        assert isinstance(open_source(tmp_path / 'a.png'), Marker)
        assert type(registered_openers()[0]) is EagerOpener
    finally:
        SOURCES.module_dict.pop('EagerOpener')


def test_closed_source_refuses_iteration(tmp_path):
    _write(tmp_path / 'a.png', np.zeros((2, 2, 3), np.uint8))
    source = ImageFileOpener().open(str(tmp_path))
    source.close()
    with pytest.raises(SourceError, match='closed'):
        list(source)


def test_core_opener_is_the_one_image_folder_source(tmp_path):
    """Sidecar timestamps, stride and camera names in the core itself (the
    driving plugin's image opener uses this source)."""
    for i in range(4):
        _write(tmp_path / f'{i:02d}.png', np.full((2, 3, 3), i, np.uint8))
    (tmp_path / 'timestamps.csv').write_text(
        'filename,timestamp_ns\n' + ''.join(f'{i:02d}.png,{100 + i}\n'
                                            for i in range(4)))
    with ImageFileOpener().open(str(tmp_path), stride=2) as source:
        frames = list(source)
    assert [f.timestamp_ns for f in frames] == [100, 102]
    assert [f.meta['clock'] for f in frames] == ['sidecar'] * 2
    assert frames[0].camera == tmp_path.name  # named after the folder
    with ImageFileOpener().open(str(tmp_path), sidecar=False,
                                camera='left') as source:
        frame = next(iter(source))
    assert frame.meta['clock'] == 'index' and frame.camera == 'left'
