"""Annotation tables: every bad CSV is one AnnotationError (a UserError and
a ValueError) naming the file, the row (header = row 1), the column, why
and how to fix it; a header alone is a valid, empty table."""
import re

import numpy as np
import pytest

from perception.errors import UserError, is_user_error
from perception_medical.annotations import (
    AnnotationError,
    read_annotations,
    read_slice_boxes,
)

HEADER = 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'
BOX_HEADER = 'sop_instance_uid,x1,y1,x2,y2,label\n'


def _error(path, text: str, read=read_annotations, **kw) -> str:
    path.write_text(text)
    with pytest.raises(AnnotationError) as info:
        read(str(path), **kw)
    assert isinstance(info.value, UserError) and isinstance(
        info.value, ValueError) and is_user_error(info.value)
    message = str(info.value)
    assert '\n' not in message and message.startswith(f'{path}: row ')
    return message[len(str(path)) + 2:]


def test_missing_column_lists_found_and_expected(tmp_path):
    message = _error(tmp_path / 'a.csv',
                     'seriesuid,coordX,coordY,coordZ\n1.2,0,0,0\n')
    assert message == (
        'row 1 (header): missing column(s) diameter_mm; expected '
        'seriesuid,coordX,coordY,coordZ,diameter_mm, found '
        'seriesuid,coordX,coordY,coordZ; fix the header (names are '
        'case-sensitive)')


def test_header_spaces_and_byte_order_mark_are_accepted(tmp_path):
    path = tmp_path / 'a.csv'
    path.write_bytes(b'\xef\xbb\xbfseriesuid, coordX, coordY, coordZ, '
                     b'diameter_mm\n1.2, 1, 2, 3, 5\n')
    (xyz, diameter), = read_annotations(str(path))['1.2']
    np.testing.assert_array_equal(xyz, [1, 2, 3])
    assert diameter == 5


@pytest.mark.parametrize('value,why', [
    ('zero', "coordY='zero' is not a number; write a number (a decimal "
             'point, not a comma) or delete the row'),
    ('', 'empty; write a number or delete the row'),
    ('nan', "coordY='nan' is not a finite number; write the real value or "
            'delete the row'),
    ('-inf', "coordY='-inf' is not a finite number; write the real value or "
             'delete the row'),
])
def test_bad_coordinate_names_row_column_and_value(tmp_path, value, why):
    message = _error(tmp_path / 'a.csv',
                     f'{HEADER}1.2,0,0,0,5\n1.2,0,{value},0,5\n')
    assert message == f'row 3, column coordY: {why}'


@pytest.mark.parametrize('diameter', ['0', '-1', '-0.5'])
def test_diameter_must_be_positive(tmp_path, diameter):
    message = _error(tmp_path / 'a.csv', f'{HEADER}1.2,0,0,0,{diameter}\n')
    assert message == (f'row 2, column diameter_mm: diameter_mm must be > 0, '
                       f"got {diameter}; write the lesion's diameter in mm "
                       'or delete the row')
    # LUNA16's excluded findings (-1): a stand-in diameter when asked
    path = tmp_path / 'a.csv'
    assert read_annotations(str(path), unknown_diameter=10.0)['1.2'][0][1] \
        == 10.0


def test_diameter_nan_is_not_a_finite_number(tmp_path):
    message = _error(tmp_path / 'a.csv', f'{HEADER}1.2,0,0,0,NaN\n')
    assert message.startswith("row 2, column diameter_mm: diameter_mm='NaN' "
                              'is not a finite number')


def test_row_numbers_count_the_header_and_blank_lines(tmp_path):
    message = _error(tmp_path / 'a.csv',
                     f'{HEADER}1.2,0,0,0,5\n\n1.3,0,0,x,5\n')
    assert message.startswith("row 4, column coordZ: coordZ='x'")


def test_short_and_long_rows(tmp_path):
    message = _error(tmp_path / 'a.csv', f'{HEADER}1.2,0,0\n')
    assert message == ('row 2, column coordZ: missing (the row has 3 '
                       'value(s), the header 5 columns); give every column '
                       'a value or delete the row')
    message = _error(tmp_path / 'a.csv', f'{HEADER}1.2,0,0,0,5,7,8\n')
    assert message == ("row 2: 2 value(s) more than the header has columns "
                       "('7'...); a comma inside a value needs \"quotes\", "
                       'or delete the extra values')
    # a trailing comma (an empty extra value) is harmless
    (tmp_path / 'b.csv').write_text(f'{HEADER}1.2,0,0,0,5,\n')
    assert len(read_annotations(str(tmp_path / 'b.csv'))['1.2']) == 1


def test_empty_seriesuid(tmp_path):
    message = _error(tmp_path / 'a.csv', f'{HEADER} ,0,0,0,5\n')
    assert message == ("row 2, column seriesuid: empty; write the series' "
                       'SeriesInstanceUID or delete the row')


def test_header_alone_is_a_study_without_lesions(tmp_path):
    path = tmp_path / 'a.csv'
    path.write_text(HEADER)
    assert read_annotations(str(path)) == {}
    assert read_slice_boxes(str(_write(tmp_path / 'b.csv', BOX_HEADER))) == []


@pytest.mark.parametrize('text', ['', '\n', '  \n\n'])
def test_a_file_without_header_is_an_error(tmp_path, text):
    message = _error(tmp_path / 'a.csv', text)
    assert message == ('row 1: the file is empty (no header); write the '
                       'header seriesuid,coordX,coordY,coordZ,diameter_mm as '
                       'row 1 (a header alone means no annotations)')


def test_not_utf8_text(tmp_path):
    path = tmp_path / 'a.csv'
    path.write_bytes(HEADER.encode() + b'1.2,\xff\xfe,0,0,5\n')
    with pytest.raises(AnnotationError, match=re.escape(
            f'{path}: not UTF-8 text; save the table as a UTF-8 CSV')):
        read_annotations(str(path))


def _write(path, text):
    path.write_text(text)
    return path


def test_slice_boxes_read_back(tmp_path):
    path = _write(tmp_path / 'b.csv', f'{BOX_HEADER}1.2.3,1,2,5.5,8,0\n')
    (row, uid, box, label), = read_slice_boxes(str(path), num_classes=1)
    assert (row, uid, label) == (2, '1.2.3', 0)
    np.testing.assert_array_equal(box, np.float32([1, 2, 5.5, 8]))


@pytest.mark.parametrize('line,why', [
    ('1.2.3,1,2,x,8,0', "column x2: x2='x' is not a number"),
    ('1.2.3,5,2,5,8,0', 'column x2: x2=5 must be > x1=5 (x1,y1 is the '
                        'top-left corner, x2,y2 the bottom-right, in '
                        'pixels); fix or delete the row'),
    ('1.2.3,1,9,5,8,0', 'column y2: y2=8 must be > y1=9'),
    ('1.2.3,1,2,5,8,1', 'column label: label=1 is not a class index; write '
                        'an integer from 0 to 0'),
    ('1.2.3,1,2,5,8,0.5', 'column label: label=0.5 is not a class index'),
    ('1.2.3,1,2,5,8,-1', 'column label: label=-1 is not a class index'),
    (',1,2,5,8,0', "column sop_instance_uid: empty; write the slice's "
                   'SOPInstanceUID or delete the row'),
    ('1.2.3,1,2,inf,8,0', "column x2: x2='inf' is not a finite number"),
])
def test_bad_slice_boxes(tmp_path, line, why):
    message = _error(tmp_path / 'boxes.csv',
                     f'{BOX_HEADER}1.2.3,1,2,5,8,0\n{line}\n',
                     read=read_slice_boxes, num_classes=1)
    assert message.startswith(f'row 3, {why}')


def test_slice_boxes_missing_column(tmp_path):
    message = _error(tmp_path / 'boxes.csv', 'sop_instance_uid,x1,y1,x2,y2\n',
                     read=read_slice_boxes)
    assert message.startswith('row 1 (header): missing column(s) label; '
                              'expected sop_instance_uid,x1,y1,x2,y2,label, '
                              'found sop_instance_uid,x1,y1,x2,y2;')


def test_the_lesion_dataset_raises_the_csv_error(tmp_path):
    from perception_medical.datasets.lesions import LesionDetectionDataset
    from perception_medical.synth import write_ct_study
    write_ct_study(tmp_path, n_patients=1, size=16, n_slices=3, seed=1)
    with open(tmp_path / 'annotations.csv', 'a') as f:
        f.write('9.9.9,0,0,0,-2\n')
    rows = (tmp_path / 'annotations.csv').read_text().splitlines()
    kw = dict(data_root=str(tmp_path), split='all',
              index_file=str(tmp_path / 'i.json'))
    with pytest.raises(AnnotationError, match=re.escape(
            f"{tmp_path / 'annotations.csv'}: row {len(rows)}, column "
            'diameter_mm: diameter_mm must be > 0, got -2')):
        LesionDetectionDataset(**kw)
    _write(tmp_path / 'boxes.csv', f'{BOX_HEADER}1.2.3,4,2,3,8,0\n')
    with pytest.raises(AnnotationError, match=re.escape(
            f"{tmp_path / 'boxes.csv'}: row 2, column x2: x2=3 must be > "
            'x1=4')):
        LesionDetectionDataset(ann_file=None, box_file='boxes.csv', **kw)
