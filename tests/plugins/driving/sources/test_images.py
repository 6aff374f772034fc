"""Image folders and globs: name order, sidecar CSV timestamps, 8/16 bit,
bad sidecars and unreadable files."""
import numpy as np
import pytest
from driving_fixtures import frame_code, stripes_are_rgb, write_image_folder

from perception.sources import SourceError, open_source, registered_openers
from perception_driving.sources import ImageFolderSource


def test_folder_without_sidecar_uses_index_over_fps(tmp_path):
    folder = write_image_folder(tmp_path / 'cam', n=5)
    with open_source(folder, fps=4.0) as source:
        assert isinstance(source, ImageFolderSource)
        frames = list(source)
    assert [frame_code(f.image) for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp_ns for f in frames] == [0, 250_000_000, 500_000_000,
                                               750_000_000, 1_000_000_000]
    assert all(f.meta['clock'] == 'index' for f in frames)
    assert stripes_are_rgb(frames[0].image)
    assert frames[0].image.shape == (48, 64, 3)


def test_sidecar_timestamps_and_name_order(tmp_path):
    times = [1_700_000_000_000_000_000 + d for d in (0, 33, 70, 99, 140)]
    folder = write_image_folder(tmp_path / 'cam', n=5, times_ns=times)
    # A file written last but named first still comes first.
    (folder / '000000.png').touch()
    with open_source(folder) as source:
        frames = list(source)
    assert [f.timestamp_ns for f in frames] == times
    assert [f.meta['clock'] for f in frames] == ['sidecar'] * 5
    assert [f.meta['path'].endswith(f'{i:06d}.png')
            for i, f in enumerate(frames)] == [True] * 5
    # Glob of part of the folder: the sidecar still applies.
    with open_source(str(folder / '00000[2-4].png')) as source:
        frames = list(source)
    assert [f.timestamp_ns for f in frames] == times[2:]
    # timestamp_s column and an explicit sidecar elsewhere.
    csv = tmp_path / 'seconds.csv'
    csv.write_text('filename,timestamp_s,exposure\n' + ''.join(
        f'cam/{i:06d}.png,{i * 0.5},1\n' for i in range(5)))
    with open_source(folder, sidecar=str(csv), stride=2) as source:
        frames = list(source)
    assert [f.timestamp_ns for f in frames] == [0, 1_000_000_000,
                                               2_000_000_000]
    with open_source(folder, sidecar=False) as source:
        assert next(iter(source)).meta['clock'] == 'index'


def test_sixteen_bit_scaled_or_raw(tmp_path):
    folder = write_image_folder(tmp_path / 'depth', n=3, bits=16)
    with open_source(folder) as source:
        frames = list(source)
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape[2] == 3
    assert [frame_code(f.image) for f in frames] == [0, 1, 2]
    with open_source(str(folder / '*.png'), raw=True) as source:
        raw = list(source)
    assert raw[0].image.dtype == np.uint16 and raw[0].image.ndim == 2
    assert int(raw[0].image.max()) == 85 * 257
    np.testing.assert_array_equal(raw[1].image >> 8, frames[1].image[..., 0])


@pytest.mark.parametrize('rows,match', [
    ('filename,timestamp_ns\n000000.png,1\n000001.png,2\n',
     r"no row for image .*000002\.png"),
    ('filename,timestamp_ns\n000000.png,1\n000001.png,5\n000002.png,5\n',
     r'line 4: timestamp 5 .* not after 5 \(line 3\)'),
    ('filename,timestamp_ns\n000000.png,1\n000001.png,abc\n000002.png,3\n',
     r"line 3: timestamp_ns 'abc'"),
    ('filename,timestamp_ns\n000000.png,1\n000000.png,2\n',
     r"line 3: '000000.png' is listed twice"),
    ('name,time\n000000.png,1\n', r"line 1: the header must have"),
])
def test_bad_sidecar_names_file_and_line(tmp_path, rows, match):
    folder = write_image_folder(tmp_path / 'cam', n=3)
    (folder / 'timestamps.csv').write_text(rows)
    with pytest.raises(SourceError, match=match) as info:
        open_source(folder)
    assert 'timestamps.csv' in str(info.value)


def test_rows_without_images_and_unreadable_files_are_reported(tmp_path):
    folder = write_image_folder(tmp_path / 'cam', n=4,
                                times_ns=[10, 20, 30, 40])
    (folder / '000003.png').unlink()
    (folder / '000001.png').write_bytes(b'not a png at all')
    with open_source(folder) as source:
        frames = list(source)
    assert [f.timestamp_ns for f in frames] == [10, 30]
    kinds = {e.kind: e for e in source.events}
    assert kinds['dropped'].count == 1 and source.stats['missing'] == 1
    assert '000001.png' in kinds['corrupt'].detail


def test_overrides_core_opener_and_missing_paths(tmp_path):
    names = [type(o).__name__ for o in registered_openers()]
    assert names.index('ImageFolderOpener') < names.index('ImageFileOpener')
    with pytest.raises(SourceError, match='nope.png.*does not exist'):
        open_source(tmp_path / 'nope.png')
    with pytest.raises(SourceError, match='No source opener accepts'):
        open_source(tmp_path / 'empty_folder_missing')
