"""Annotation tables (CSV): rows read with their row numbers so that every
error names the file, the row (the header is row 1), the column, why and
how to fix it; LUNA16's ``annotations.csv`` (world positions in LPS mm)
and the per-slice box CSV. Shared by the lesion dataset and the FROC
metric.

A header alone is a valid table with no rows (a study without lesions);
a file without even the header is an error (a failed or truncated write
looks the same)."""
from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np

from perception.errors import UserError

__all__ = ['AnnotationError', 'ANN_COLUMNS', 'BOX_COLUMNS', 'read_csv_rows',
           'csv_number', 'csv_text', 'read_annotations', 'read_slice_boxes']

ANN_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm')
BOX_COLUMNS = ('sop_instance_uid', 'x1', 'y1', 'x2', 'y2', 'label')


class AnnotationError(UserError, ValueError):
    """A bad annotation CSV; the message names the file, the row (header =
    row 1), the column, why, and how to fix it."""


def _at(path: str, row: int, column: str | None = None) -> str:
    """``PATH: row N[, column C]``, the start of every message."""
    return f'{path}: row {row}, column {column}' if column else \
        f'{path}: row {row}'


def read_csv_rows(path: str, columns: Sequence[str]
                  ) -> list[tuple[int, dict]]:
    """Rows ``(row number, {column: text})`` of a CSV whose header names
    ``columns`` (names stripped of spaces; a UTF-8 byte-order mark is
    allowed). Every row must give every column.

    Raises:
        FileNotFoundError: no such file.
        AnnotationError: no header, a missing column, a short or long row,
            text that is not CSV.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file; set ann_file / '
                                'box_file (relative to data_root) or None')
    expected = ','.join(columns)
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.DictReader(f)
            try:
                found = [(name or '').strip()
                         for name in (reader.fieldnames or [])]
                if not any(found):
                    raise AnnotationError(
                        f'{_at(path, 1)}: the file is empty (no header); '
                        f'write the header {expected} as row 1 (a header '
                        'alone means no annotations)')
                reader.fieldnames = found
                missing = [c for c in columns if c not in found]
                if missing:
                    raise AnnotationError(
                        f"{_at(path, 1)} (header): missing column(s) "
                        f"{','.join(missing)}; expected {expected}, found "
                        f"{','.join(found)}; fix the header (names are "
                        'case-sensitive)')
                rows = []
                for row in reader:
                    _check_fields(path, reader.line_num, row, columns,
                                  len(found))
                    rows.append((reader.line_num, row))
                return rows
            except csv.Error as exc:
                raise AnnotationError(
                    f'{_at(path, reader.line_num)}: not CSV ({exc}); save '
                    'the table as comma-separated text') from None
    except UnicodeDecodeError:
        raise AnnotationError(
            f'{path}: not UTF-8 text; save the table as a UTF-8 CSV with '
            f'the header {expected}') from None


def _check_fields(path: str, row_no: int, row: dict,
                  columns: Sequence[str], n_header: int) -> None:
    """A row that gives every column, and no value beyond the header."""
    short = [c for c in columns if row.get(c) is None]
    if short:
        given = sum(v is not None for k, v in row.items() if k is not None)
        raise AnnotationError(
            f'{_at(path, row_no, short[0])}: missing (the row has {given} '
            f'value(s), the header {n_header} columns); give every column '
            'a value or delete the row')
    extra = [v for v in row.get(None) or [] if v.strip()]
    if extra:
        raise AnnotationError(
            f'{_at(path, row_no)}: {len(extra)} value(s) more than the '
            f'header has columns ({extra[0]!r}...); a comma inside a value '
            'needs "quotes", or delete the extra values')


def csv_number(path: str, line: int, row: dict, key: str) -> float:
    """``row[key]`` as a finite float; otherwise an :class:`AnnotationError`
    naming the file, the row (``line``, header = row 1), the column and the
    value."""
    text = (row[key] or '').strip()
    if not text:
        raise AnnotationError(f'{_at(path, line, key)}: empty; write a '
                              'number or delete the row')
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f'{_at(path, line, key)}: {key}={text!r} is '
                              'not a number; write a number (a decimal '
                              'point, not a comma) or delete the row'
                              ) from None
    if not np.isfinite(value):
        raise AnnotationError(f'{_at(path, line, key)}: {key}={text!r} is '
                              'not a finite number; write the real value or '
                              'delete the row')
    return value


def csv_text(path: str, line: int, row: dict, key: str, what: str) -> str:
    """``row[key]`` stripped; empty is an :class:`AnnotationError` asking
    for ``what``."""
    text = (row[key] or '').strip()
    if not text:
        raise AnnotationError(f'{_at(path, line, key)}: empty; write the '
                              f'{what} or delete the row')
    return text


def read_annotations(path: str, unknown_diameter: float | None = None
                     ) -> dict[str, list[tuple[np.ndarray, float]]]:
    """LUNA16 ``annotations.csv`` -> {seriesuid: [(LPS centre mm, diameter
    mm), ...]} (empty for a header alone). ``unknown_diameter``: used for
    rows with diameter <= 0 (LUNA16's excluded findings say -1 and its
    script takes 10 mm); without it such rows are an error."""
    out: dict[str, list] = {}
    for line, row in read_csv_rows(path, ANN_COLUMNS):
        uid = csv_text(path, line, row, 'seriesuid',
                       "series' SeriesInstanceUID")
        xyz = np.array([csv_number(path, line, row, k)
                        for k in ('coordX', 'coordY', 'coordZ')])
        diameter = csv_number(path, line, row, 'diameter_mm')
        if diameter <= 0 and unknown_diameter is not None:
            diameter = float(unknown_diameter)
        if diameter <= 0:
            raise AnnotationError(
                f"{_at(path, line, 'diameter_mm')}: diameter_mm must be > 0, "
                f"got {row['diameter_mm'].strip()}; write the lesion's "
                'diameter in mm or delete the row')
        out.setdefault(uid, []).append((xyz, diameter))
    return out


def read_slice_boxes(path: str, num_classes: int | None = None
                     ) -> list[tuple[int, str, np.ndarray, int]]:
    """The per-slice box CSV (``sop_instance_uid,x1,y1,x2,y2,label``,
    pixel-edge coordinates) -> ``[(row number, SOP instance UID, xyxy box
    float32, label)]``. Labels are class indices, ``0 <= label <
    num_classes`` when that is given."""
    out = []
    for line, row in read_csv_rows(path, BOX_COLUMNS):
        uid = csv_text(path, line, row, 'sop_instance_uid',
                       "slice's SOPInstanceUID")
        box = np.array([csv_number(path, line, row, c)
                        for c in ('x1', 'y1', 'x2', 'y2')], np.float32)
        for i, (lo, hi) in enumerate((('x1', 'x2'), ('y1', 'y2'))):
            if box[i + 2] <= box[i]:
                raise AnnotationError(
                    f'{_at(path, line, hi)}: {hi}={row[hi].strip()} must be '
                    f'> {lo}={row[lo].strip()} (x1,y1 is the top-left '
                    'corner, x2,y2 the bottom-right, in pixels); fix or '
                    'delete the row')
        label = csv_number(path, line, row, 'label')
        top = f'{num_classes - 1}' if num_classes else 'the last class'
        if label != int(label) or label < 0 or (
                num_classes is not None and label >= num_classes):
            raise AnnotationError(
                f"{_at(path, line, 'label')}: label={row['label'].strip()} "
                f'is not a class index; write an integer from 0 to {top}')
        out.append((line, uid, box, int(label)))
    return out
