"""The confidentiality profile as data: DICOM PS3.15 Table E.1-1.

The table ships as package data beside this module
(``deid/data/ps3.15_2024b_table_e1-1.csv``), so a new edition of the standard
is a data change, not a code change. This module resolves each attribute's
action for the Basic Application Level Confidentiality Profile with the
Retain Longitudinal Temporal Information with Modified Dates Option, and
makes the dummy values that action ``D`` needs.
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

EDITION = '2024b'
TABLE_FILE = Path(__file__).with_name('data') / f'ps3.15_{EDITION}_table_e1-1.csv'

# Actions after resolving the table's combinations (PS3.15 E.3.1):
KEEP, REMOVE, EMPTY, DUMMY, UID, CLEAN, RECURSE = 'K', 'X', 'Z', 'D', 'U', 'C', 'R'

# The table's "X/Z", "X/D", "Z/D", "X/Z/D" mean "the first, unless the
# IOD needs the attribute to stay (Type 1 or 2)". Without the IOD's module
# tables at hand we keep the attribute whenever the combination allows it:
# the result stays conformant for every type and carries no original value.
_COMBINED = {
    'X/Z': EMPTY,
    'X/D': DUMMY,
    'Z/D': DUMMY,
    'X/Z/D': DUMMY,
    # Referenced/Source Image Sequence: keep the items, their UIDs are
    # replaced by their own "U" rows (Referenced SOP Instance UID ...).
    'X/Z/U*': RECURSE,
}
_DATE_VRS = ('DA', 'DT', 'TM')


@dataclass(frozen=True)
class ProfileRow:
    """One row of Table E.1-1: its tag text, name and two action columns."""

    tag: str
    name: str
    basic: str
    modified_dates: str

    def action(self, vr: str) -> str:
        """The resolved action for an element of value representation ``vr``.

        The option's "C" (modify dates and times with the patient's offset)
        applies to DA/DT/TM values; binary timestamps (OB) and the timezone
        offset (SH) cannot be shifted, so their basic action applies.
        """
        if self.modified_dates == CLEAN and vr in _DATE_VRS:
            return CLEAN
        action = _COMBINED.get(self.basic, self.basic)
        if action == DUMMY and vr == 'UI':
            return UID  # a dummy UID must still be consistent across files
        return action


class Profile:
    """Action lookup for tags, repeating groups and private attributes."""

    def __init__(self, rows: list[ProfileRow], edition: str = EDITION):
        self.rows = rows
        self.edition = edition
        self._exact: dict[int, ProfileRow] = {}
        self._repeating: list[tuple[int, int, ProfileRow]] = []
        self.private_row: ProfileRow | None = None
        for row in rows:
            text = row.tag.upper()
            if 'ODD' in text:
                self.private_row = row
                continue
            group, elem = text.strip('()').split(',')
            if 'X' in text:
                # (50XX,XXXX) curves, (60XX,3000) overlays: X digits are wild.
                mask = int(''.join('0' if c == 'X' else 'F' for c in group + elem), 16)
                value = int((group + elem).replace('X', '0'), 16)
                self._repeating.append((mask, value, row))
            else:
                self._exact[int(group + elem, 16)] = row

    def __len__(self) -> int:
        return len(self.rows)

    def row_for(self, tag: int) -> ProfileRow | None:
        """The table row governing ``tag`` (an int), or None if unlisted."""
        row = self._exact.get(tag)
        if row is not None:
            return row
        for mask, value, row in self._repeating:
            if tag & mask == value:
                return row
        return None


@functools.lru_cache(maxsize=None)
def load_profile(path: str | Path = TABLE_FILE) -> Profile:
    """Read Table E.1-1 from the CSV shipped with the plugin.

    Args:
        path: the CSV (``#`` lines are comments; columns ``tag``, ``name``,
            ``basic_profile``, ``rtn_long_modif_dates_opt``).
    """
    path = Path(path)
    edition = EDITION
    with open(path, newline='', encoding='utf-8') as f:
        lines = [line for line in f if not line.startswith('#')]
    rows = []
    for lineno, rec in enumerate(csv.DictReader(lines), start=2):
        try:
            rows.append(ProfileRow(rec['tag'], rec['name'], rec['basic_profile'],
                                   rec['rtn_long_modif_dates_opt'] or ''))
        except KeyError as exc:
            raise ValueError(
                f'{path}: data row {lineno}: column {exc} missing; the file must have '
                'the columns tag,name,basic_profile,rtn_long_modif_dates_opt') from None
    return Profile(rows, edition)


# Dummy values by VR for action D: non-empty, valid for the VR, and
# obviously not a real value. Length limits: AE/CS/SH 16, LO 64.
_TEXT_DUMMY = 'ANONYMIZED'
DUMMY_VALUES = {
    'AE': _TEXT_DUMMY, 'CS': _TEXT_DUMMY, 'SH': _TEXT_DUMMY, 'LO': _TEXT_DUMMY,
    'LT': _TEXT_DUMMY, 'ST': _TEXT_DUMMY, 'UT': _TEXT_DUMMY, 'UC': _TEXT_DUMMY,
    'PN': 'ANONYMIZED', 'UR': 'urn:anonymized',
    'AS': '000D', 'DA': '19000101', 'TM': '000000', 'DT': '19000101000000',
    'IS': '0', 'DS': '0',
    'US': 0, 'SS': 0, 'UL': 0, 'SL': 0, 'UV': 0, 'SV': 0, 'FL': 0.0, 'FD': 0.0,
    'AT': 0,
}
_BINARY_DUMMY = b'\x00\x00'


def dummy_value(vr: str):
    """A dummy value for action D with value representation ``vr``."""
    return DUMMY_VALUES.get(vr, _BINARY_DUMMY)
