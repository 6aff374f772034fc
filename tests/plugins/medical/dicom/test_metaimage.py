"""MetaImage volumes (LUNA16's release): header fields to the (z, y, x)
array and the LPS affine, raw / zlib-compressed / LOCAL data, big-endian,
errors naming the file and field; LesionDetectionDataset trains on the
LUNA16 layout (subsetN/<seriesuid>.mhd + annotations.csv) as it is."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from perception_medical.datasets import LesionDetectionDataset
from perception_medical.dicom.metaimage import (
    MetaImageError,
    read_header,
    read_metaimage,
    read_metaimage_slice,
    write_metaimage,
)

# x axis -> (0, 1, 0), y axis -> (-1, 0, 0), z axis -> (0, 0, 1)
TRANSFORM = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], float)


def _volume(shape=(5, 6, 7)):
    return (np.arange(np.prod(shape)).reshape(shape) - 100).astype(np.int16)


@pytest.mark.parametrize('compressed', [False, True])
def test_round_trip_and_affine(tmp_path, compressed):
    array = _volume()
    path = write_metaimage(tmp_path / '1.2.3.mhd', array, (0.7, 0.8, 2.5),
                           (-10.0, 20.0, -300.0), TRANSFORM, compressed)
    assert (tmp_path / ('1.2.3.zraw' if compressed else '1.2.3.raw')).is_file()
    volume = read_metaimage(path)
    np.testing.assert_array_equal(volume.array, array)
    assert volume.array.dtype == np.float32
    assert volume.spacing == (2.5, 0.8, 0.7)
    assert volume.meta['series_uid'] == '1.2.3'
    # voxel (z=1, y=2, x=3): offset + 3*0.7*x_dir + 2*0.8*y_dir + 1*2.5*z_dir
    np.testing.assert_allclose(volume.index_to_lps([1, 2, 3]),
                               [-10 - 1.6, 20 + 2.1, -300 + 2.5])
    np.testing.assert_allclose(volume.lps_to_index(volume.index_to_lps(
        [[4, 5, 6]])), [[4, 5, 6]])
    for k in range(5):
        np.testing.assert_array_equal(read_metaimage_slice(path, k), array[k])


def test_big_endian_local_data_and_aliases(tmp_path):
    array = (_volume((2, 3, 4)) * 0.5).astype('>f4')
    header = ('ObjectType = Image\nNDims = 3\nBinaryData = True\n'
              'ElementByteOrderMSB = True\nOrigin = 1 2 3\n'
              'Direction = 1 0 0 0 1 0 0 0 1\nElementSpacing = 1 1 3\n'
              'DimSize = 4 3 2\nElementType = MET_FLOAT\n'
              'ElementDataFile = LOCAL\n').encode()
    path = tmp_path / 'v.mha'
    path.write_bytes(header + array.tobytes())
    volume = read_metaimage(path)
    np.testing.assert_array_equal(volume.array, array.astype(np.float32))
    np.testing.assert_allclose(volume.affine[:3, 3], [1, 2, 3])
    np.testing.assert_array_equal(read_metaimage_slice(path, 1), array[1])


@pytest.mark.parametrize('edit, match', [
    (lambda h: h.replace('MET_SHORT', 'MET_QUAD'), r'ElementType = .MET_QUAD.'),
    (lambda h: h.replace('DimSize = 7 6 5\n', ''), 'missing field DimSize'),
    (lambda h: h.replace('ElementSpacing = ', 'ElementSpacing = 0 '),
     'ElementSpacing'),
    (lambda h: h.replace('NDims = 3', 'NDims = 2'), 'NDims = 2'),
])
def test_bad_headers_name_file_and_field(tmp_path, edit, match):
    path = write_metaimage(tmp_path / 'v.mhd', _volume())
    path_text = (tmp_path / 'v.mhd').read_text()
    (tmp_path / 'v.mhd').write_text(edit(path_text))
    with pytest.raises(MetaImageError, match=match) as info:
        read_metaimage(path)
    assert 'v.mhd' in str(info.value)


def test_truncated_and_missing_data(tmp_path):
    path = write_metaimage(tmp_path / 'v.mhd', _volume())
    raw = tmp_path / 'v.raw'
    raw.write_bytes(raw.read_bytes()[:-10])
    with pytest.raises(MetaImageError, match='truncated'):
        read_metaimage(path)
    raw.unlink()
    with pytest.raises(MetaImageError, match='v.raw not found'):
        read_metaimage_slice(path, 0)
    zpath = write_metaimage(tmp_path / 'z.mhd', _volume(), compressed=True)
    (tmp_path / 'z.zraw').write_bytes(b'not zlib')
    with pytest.raises(MetaImageError, match='not zlib'):
        read_metaimage(zpath)
    assert zlib  # the writer's compression is zlib


def test_header_reads_no_pixels(tmp_path):
    path = write_metaimage(tmp_path / 'v.mhd', _volume())
    (tmp_path / 'v.raw').unlink()  # a header alone is enough for the index
    header = read_header(path)
    assert header['shape'] == (5, 6, 7) and header['spacing'] == (1.0, 1.0, 1.0)


def test_lesion_dataset_on_the_luna16_layout(tmp_path):
    """Two volumes in subset folders, a bright sphere in each at known world
    mm; the dataset puts boxes on the slices that cut it, over the sphere."""
    root = tmp_path / 'luna16'
    rows = ['seriesuid,coordX,coordY,coordZ,diameter_mm']
    centres = {}
    for i, (uid, transform) in enumerate([('1.3.6.1.4.1.14519.5.2.1.1', np.eye(3)),
                                          ('1.3.6.1.4.1.14519.5.2.1.2', TRANSFORM)]):
        shape, spacing = (12, 32, 32), np.array([1.2, 1.0, 2.5])  # x, y, z mm
        offset = np.array([-20.0 - 5 * i, -16.0, -400.0 + 30 * i])
        zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
        index_xyz = np.stack([xx, yy, zz], -1) * spacing
        world = offset + index_xyz @ transform
        centre = offset + np.array([14.4, 15.0, 15.0]) @ transform
        hu = np.where(np.linalg.norm(world - centre, axis=-1) < 5.0, 100, -1000)
        (root / f'subset{i}').mkdir(parents=True)
        write_metaimage(root / f'subset{i}' / f'{uid}.mhd', hu.astype(np.int16),
                        spacing, offset, transform)
        rows.append(f'{uid},{centre[0]:.3f},{centre[1]:.3f},{centre[2]:.3f},10')
        centres[uid] = centre
    (root / 'annotations.csv').write_text('\n'.join(rows) + '\n')
    ds = LesionDetectionDataset(data_root=str(root), ann_file='annotations.csv',
                                split='all', num_slices=3, min_size_mm=0.0,
                                index_file=str(tmp_path / 'index' / 'i.json'))
    assert len(ds) == 24
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        info = ds.get_data_info(i)
        boxes = info['gt_bboxes']
        centre_slice = item['img'][..., 1]
        bright = centre_slice > 0
        if not len(boxes):
            assert not bright.any(), i
            continue
        seen.add(info['series_uid'])
        x1, y1, x2, y2 = boxes[0]
        ys, xs = np.nonzero(bright)
        # the box covers the bright section (to a pixel)
        assert xs.min() >= x1 - 1 and xs.max() + 1 <= x2 + 1
        assert ys.min() >= y1 - 1 and ys.max() + 1 <= y2 + 1
        assert info['scan_fields']['slice_thickness_band'] == '1.5-3 mm'
        assert item['img'].shape == (32, 32, 3)
    assert seen == set(centres)
    # every MetaImage volume is its own patient: a patient-level split
    split = LesionDetectionDataset(data_root=str(root), ann_file='annotations.csv',
                                   split='val', val_fraction=0.5,
                                   index_file=str(tmp_path / 'index' / 'i.json'))
    assert {split.get_data_info(i)['series_uid'] for i in range(len(split))} \
        < set(centres)


def test_same_geometry_and_voxels_as_simpleitk(tmp_path):
    """Cross-check with ITK's own reader where SimpleITK is installed (it is
    not a dependency)."""
    sitk = pytest.importorskip('SimpleITK', reason='SimpleITK not installed '
                               '(optional cross-check)')
    array = _volume()
    for compressed in (False, True):
        path = write_metaimage(tmp_path / f'v{int(compressed)}.mhd', array,
                               (0.7, 0.8, 2.5), (-10.0, 20.0, -300.0),
                               TRANSFORM, compressed)
        image = sitk.ReadImage(path)
        volume = read_metaimage(path)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), volume.array)
        for zyx in ([0, 0, 0], [1, 2, 3], [4, 5, 6]):
            itk = image.TransformContinuousIndexToPhysicalPoint(
                [float(v) for v in zyx[::-1]])
            np.testing.assert_allclose(volume.index_to_lps(zyx), itk, atol=1e-6)
