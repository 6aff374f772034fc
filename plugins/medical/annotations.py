"""Annotation tables (CSV): rows read with their line numbers so that every
error names the file, the line and the field, and LUNA16's
``annotations.csv`` (world positions in LPS mm). Shared by the lesion
dataset and the FROC metric."""
from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np

ANN_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm')
BOX_COLUMNS = ('sop_instance_uid', 'x1', 'y1', 'x2', 'y2', 'label')


def read_csv_rows(path: str, columns: Sequence[str]
                  ) -> list[tuple[int, dict]]:
    """Rows (line number, dict) of a CSV that must have ``columns``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file; set ann_file / '
                                'box_file (relative to data_root) or None')
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f'{path}: line 1: missing column(s) {missing}; the header '
                f"must name {','.join(columns)} (found "
                f"{','.join(reader.fieldnames or [])})")
        return [(i + 2, row) for i, row in enumerate(reader)]


def csv_number(path: str, line: int, row: dict, key: str) -> float:
    """``row[key]`` as a finite float; otherwise an error naming the file,
    line and field."""
    try:
        value = float(row[key])
    except (TypeError, ValueError):
        raise ValueError(f'{path}: line {line}: {key}={row[key]!r} is not a '
                         'number; fix or delete the row') from None
    if not np.isfinite(value):
        raise ValueError(f'{path}: line {line}: {key} is {value}')
    return value


def read_annotations(path: str, unknown_diameter: float | None = None
                     ) -> dict[str, list[tuple[np.ndarray, float]]]:
    """LUNA16 ``annotations.csv`` -> {seriesuid: [(LPS centre mm, diameter
    mm), ...]}. ``unknown_diameter``: used for rows with diameter <= 0
    (LUNA16's excluded findings say -1 and its script takes 10 mm);
    without it such rows are an error."""
    out: dict[str, list] = {}
    for line, row in read_csv_rows(path, ANN_COLUMNS):
        xyz = np.array([csv_number(path, line, row, k)
                        for k in ('coordX', 'coordY', 'coordZ')])
        diameter = csv_number(path, line, row, 'diameter_mm')
        if diameter <= 0 and unknown_diameter is not None:
            diameter = float(unknown_diameter)
        if diameter <= 0:
            raise ValueError(f'{path}: line {line}: diameter_mm must be > 0, '
                             f'got {diameter}')
        out.setdefault(row['seriesuid'].strip(), []).append((xyz, diameter))
    return out
