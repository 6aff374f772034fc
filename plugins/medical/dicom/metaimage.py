"""MetaImage volumes (``.mhd`` + ``.raw`` / ``.zraw``, or one ``.mha``) read
into the same :class:`~perception_medical.dicom.volume.Volume` as a DICOM
series: the format of the public LUNA16 release.

The header is ``Key = Value`` text. Read here: ``NDims`` (3),
``DimSize`` (x y z), ``ElementType`` (``MET_UCHAR`` ... ``MET_DOUBLE``),
``ElementSpacing`` (x y z mm), ``Offset`` (alias ``Origin``/``Position``:
world position of the first voxel), ``TransformMatrix`` (alias
``Direction``/``Rotation``), ``BinaryDataByteOrderMSB`` (alias
``ElementByteOrderMSB``), ``CompressedData`` (zlib, the ``.zraw`` files),
``HeaderSize``, ``ElementNumberOfChannels`` (1) and ``ElementDataFile``
(a file beside the header, or ``LOCAL``: the data follow the header).

World coordinates are ITK's, which are LPS millimetres (LUNA16's
``annotations.csv`` is in the same space); ``AnatomicalOrientation`` is
recorded in ``meta`` but not used, as ITK does. ``TransformMatrix`` is
read as ITK reads it: its values ``3i .. 3i+2`` are the direction of
voxel axis ``i`` (x, y, z). The voxels are stored x fastest, so the array
comes out as (z, y, x) and the affine maps (z, y, x, 1) to LPS like a
DICOM series' does. The series UID is the file name without its suffix
(LUNA16 names each volume after its ``seriesuid``).
"""
from __future__ import annotations

import functools
import os
import zlib

import numpy as np

from .volume import SeriesError, SeriesReport, Volume

METAIMAGE_SUFFIXES = ('.mhd', '.mha')
#: MetaImage element types -> numpy dtypes (byte order set per file)
ELEMENT_TYPES = {
    'MET_UCHAR': 'u1', 'MET_CHAR': 'i1', 'MET_USHORT': 'u2', 'MET_SHORT': 'i2',
    'MET_UINT': 'u4', 'MET_INT': 'i4', 'MET_ULONG': 'u4', 'MET_LONG': 'i4',
    'MET_ULONG_LONG': 'u8', 'MET_LONG_LONG': 'i8', 'MET_FLOAT': 'f4',
    'MET_DOUBLE': 'f8',
}
_ALIASES = {'Origin': 'Offset', 'Position': 'Offset',
            'Direction': 'TransformMatrix', 'Rotation': 'TransformMatrix',
            'ElementByteOrderMSB': 'BinaryDataByteOrderMSB'}


class MetaImageError(SeriesError):
    """A MetaImage file that cannot be read (names the file and field)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 'unreadable')


def is_metaimage(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a MetaImage header (``.mhd`` / ``.mha``)."""
    return os.fspath(path).lower().endswith(METAIMAGE_SUFFIXES)


def read_header(path: str | os.PathLike) -> dict:
    """The header of a MetaImage file as a dict of parsed fields:
    ``shape`` (z, y, x), ``dtype``, ``spacing`` (z, y, x), ``affine`` (4x4,
    (z, y, x, 1) -> LPS), ``compressed``, ``data_file``, ``data_offset``
    (bytes to skip; -1: the data end the file), ``fields`` (raw text)."""
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            raw = f.read(1 << 16)
    except OSError as exc:
        raise MetaImageError(f'{path}: cannot read ({exc.strerror})') from None
    fields: dict[str, str] = {}
    end = 0
    for line in raw.split(b'\n'):
        end += len(line) + 1
        text = line.decode('latin-1').strip()
        if not text:
            continue
        if '=' not in text:
            raise MetaImageError(f'{path}: header line {text[:40]!r} is not '
                                 '"Key = Value"; is this a MetaImage file?')
        key, value = (s.strip() for s in text.split('=', 1))
        fields[_ALIASES.get(key, key)] = value
        if key == 'ElementDataFile':
            break
    else:
        raise MetaImageError(f'{path}: no ElementDataFile field; the header '
                             'must end with ElementDataFile = <file>|LOCAL')
    return _parse(path, fields, end)


def _numbers(path: str, fields: dict, key: str, n: int, default=None):
    if key not in fields:
        if default is None:
            raise MetaImageError(f'{path}: missing field {key} ({n} numbers)')
        return np.asarray(default, np.float64)
    try:
        values = np.array([float(v) for v in fields[key].split()])
    except ValueError:
        raise MetaImageError(f'{path}: {key} = {fields[key]!r} is not {n} '
                             'numbers') from None
    if len(values) != n or not np.isfinite(values).all():
        raise MetaImageError(f'{path}: {key} = {fields[key]!r}: expected {n} '
                             'finite numbers')
    return values


def _flag(fields: dict, key: str) -> bool:
    return fields.get(key, 'False').strip().lower() in ('true', '1', 'yes')


def _parse(path: str, fields: dict, end: int) -> dict:
    if fields.get('ObjectType', 'Image') != 'Image':
        raise MetaImageError(f"{path}: ObjectType = {fields['ObjectType']}; "
                             'only Image is supported')
    ndims = int(_numbers(path, fields, 'NDims', 1)[0])
    if ndims != 3:
        raise MetaImageError(f'{path}: NDims = {ndims}; a CT volume needs 3')
    channels = int(_numbers(path, fields, 'ElementNumberOfChannels', 1, [1])[0])
    if channels != 1:
        raise MetaImageError(f'{path}: ElementNumberOfChannels = {channels}; '
                             'only single-channel volumes are supported')
    size = _numbers(path, fields, 'DimSize', 3).astype(int)
    element = fields.get('ElementType', '')
    if element not in ELEMENT_TYPES:
        raise MetaImageError(f'{path}: ElementType = {element!r}; use one of '
                             f"{', '.join(ELEMENT_TYPES)}")
    order = '>' if _flag(fields, 'BinaryDataByteOrderMSB') else '<'
    dtype = np.dtype(order + ELEMENT_TYPES[element])
    spacing_xyz = _numbers(path, fields, 'ElementSpacing', 3,
                           _numbers(path, fields, 'ElementSize', 3, [1, 1, 1]))
    if (spacing_xyz <= 0).any():
        raise MetaImageError(f'{path}: ElementSpacing = {spacing_xyz.tolist()} '
                             'must be positive')
    offset = _numbers(path, fields, 'Offset', 3, [0, 0, 0])
    axes = _numbers(path, fields, 'TransformMatrix', 9, np.eye(3).ravel())
    axes = axes.reshape(3, 3)  # row i: direction of voxel axis i (x, y, z)
    if abs(np.linalg.det(axes)) < 1e-6:
        raise MetaImageError(f'{path}: TransformMatrix is singular')
    affine = np.eye(4)
    for column, axis in enumerate((2, 1, 0)):  # array axes z, y, x
        affine[:3, column] = spacing_xyz[axis] * axes[axis]
    affine[:3, 3] = offset
    data = fields['ElementDataFile']
    if data.upper() == 'LOCAL':
        data_file, data_offset = path, end
    elif data.upper().startswith('LIST') or '%' in data:
        raise MetaImageError(f'{path}: ElementDataFile = {data}: slice lists '
                             'are not supported; convert to one .raw file')
    else:
        data_file = os.path.join(os.path.dirname(path), data)
        data_offset = int(_numbers(path, fields, 'HeaderSize', 1, [0])[0])
    return dict(shape=(int(size[2]), int(size[1]), int(size[0])), dtype=dtype,
                spacing=tuple(float(spacing_xyz[i]) for i in (2, 1, 0)),
                affine=affine, compressed=_flag(fields, 'CompressedData'),
                data_file=data_file, data_offset=data_offset, fields=fields)


def _raw_bytes(header: dict, path: str) -> bytes:
    data_file = header['data_file']
    if not os.path.isfile(data_file):
        raise MetaImageError(f'{path}: ElementDataFile {data_file} not found; '
                             'keep the .raw/.zraw beside its .mhd')
    with open(data_file, 'rb') as f:
        if header['data_offset'] > 0:
            f.seek(header['data_offset'])
        blob = f.read()
    if header['compressed']:
        try:
            blob = zlib.decompress(blob)
        except zlib.error as exc:
            raise MetaImageError(f'{path}: CompressedData = True but '
                                 f'{data_file} is not zlib data ({exc})') from None
    return blob


@functools.lru_cache(maxsize=2)
def _decompressed(path: str, mtime_ns: int) -> np.ndarray:
    """A compressed volume, decompressed once (slices are read one by one)."""
    return _array(read_header(path), path)


def _array(header: dict, path: str) -> np.ndarray:
    shape, dtype = header['shape'], header['dtype']
    count = int(np.prod(shape))
    if not header['compressed'] and header['data_offset'] < 0:
        with open(header['data_file'], 'rb') as f:  # -1: the data end the file
            f.seek(-count * dtype.itemsize, os.SEEK_END)
            blob = f.read()
    else:
        blob = _raw_bytes(header, path)
    if len(blob) < count * dtype.itemsize:
        raise MetaImageError(
            f"{path}: {header['data_file']} holds {len(blob)} bytes, DimSize "
            f'x ElementType need {count * dtype.itemsize}; the file is '
            'truncated or the header wrong')
    return np.frombuffer(blob, dtype, count).reshape(shape)


def read_metaimage_slice(path: str | os.PathLike, k: int) -> np.ndarray:
    """Slice ``k`` (along z) of a MetaImage volume, float32 (y, x): the
    reader of the CT datasets for ``.mhd`` volumes (uncompressed data are
    memory-mapped, compressed ones decompressed once and cached)."""
    path = os.fspath(path)
    header = read_header(path)
    n, rows, cols = header['shape']
    if not 0 <= k < n:
        raise MetaImageError(f'{path}: slice {k} outside 0..{n - 1}')
    if header['compressed'] or header['data_offset'] < 0:
        volume = _decompressed(path, os.stat(path).st_mtime_ns)
        return volume[k].astype(np.float32)
    dtype = header['dtype']
    if not os.path.isfile(header['data_file']):
        _raw_bytes(header, path)  # raises the message
    need = header['data_offset'] + n * rows * cols * dtype.itemsize
    if os.path.getsize(header['data_file']) < need:
        raise MetaImageError(f"{path}: {header['data_file']} is shorter than "
                             'DimSize x ElementType; truncated?')
    mm = np.memmap(header['data_file'], dtype, 'r', header['data_offset'],
                   (n, rows, cols))
    return np.array(mm[k], np.float32)


def read_metaimage(path: str | os.PathLike) -> Volume:
    """A MetaImage volume as a :class:`Volume` (float32 (z, y, x) as stored:
    LUNA16's are HU; affine (z, y, x, 1) -> LPS mm; ``meta`` has
    ``series_uid`` (the file stem), ``format``, ``modality`` when the
    header says, ``anatomical_orientation``)."""
    path = os.fspath(path)
    header = read_header(path)
    array = _array(header, path).astype(np.float32)
    fields = header['fields']
    uid = os.path.splitext(os.path.basename(path))[0]
    meta = dict(series_uid=uid, format='MetaImage', decoder='metaimage',
                modality={'MET_MOD_CT': 'CT', 'MET_MOD_MR': 'MR'}.get(
                    fields.get('Modality', ''), ''),
                anatomical_orientation=fields.get('AnatomicalOrientation', ''),
                compressed=header['compressed'])
    positions = np.array([header['affine'][:3, 0] * k + header['affine'][:3, 3]
                          for k in range(header['shape'][0])])
    return Volume(array, header['affine'], header['spacing'], meta,
                  SeriesReport(), [f'{path} [slice {k}]'
                                   for k in range(len(array))], positions)


def write_metaimage(path: str | os.PathLike, array: np.ndarray,
                    spacing_xyz=(1.0, 1.0, 1.0), offset=(0.0, 0.0, 0.0),
                    transform=np.eye(3), compressed: bool = False,
                    element_type: str = 'MET_SHORT') -> str:
    """Write (z, y, x) ``array`` as ``path`` (``.mhd``) plus ``.raw`` /
    ``.zraw`` beside it, with LUNA16's header layout (for tests and
    converted data). ``transform`` rows: directions of the x, y, z axes."""
    path = os.fspath(path)
    dtype = np.dtype('<' + ELEMENT_TYPES[element_type])
    data = np.ascontiguousarray(array, dtype).tobytes()
    stem = os.path.splitext(os.path.basename(path))[0]
    data_name = stem + ('.zraw' if compressed else '.raw')
    if compressed:
        data = zlib.compress(data)
    with open(os.path.join(os.path.dirname(path), data_name), 'wb') as f:
        f.write(data)
    nz, ny, nx = array.shape
    lines = ['ObjectType = Image', 'NDims = 3', 'BinaryData = True',
             'BinaryDataByteOrderMSB = False',
             f'CompressedData = {compressed}',
             *([f'CompressedDataSize = {len(data)}'] if compressed else []),
             'TransformMatrix = ' + ' '.join(
                 f'{v:g}' for v in np.asarray(transform, float).ravel()),
             'Offset = ' + ' '.join(f'{v:.6f}' for v in offset),
             'CenterOfRotation = 0 0 0', 'AnatomicalOrientation = RAI',
             'ElementSpacing = ' + ' '.join(f'{v:.6f}' for v in spacing_xyz),
             f'DimSize = {nx} {ny} {nz}', f'ElementType = {element_type}',
             f'ElementDataFile = {data_name}']
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path
