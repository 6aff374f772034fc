"""De-identify one pydicom Dataset in place (PS3.15 Table E.1-1 actions).

:class:`Deidentifier` holds the secret key: UIDs are replaced by a keyed
hash (HMAC-SHA256) so a series stays a series across files and runs with the
same key, and each patient's dates move by one offset derived from the key
and the patient's identity. The key never leaves this object.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from .profile import CLEAN, DUMMY, EMPTY, KEEP, RECURSE, REMOVE, Profile, dummy_value, load_profile
from .profile import UID as UID_ACTION

# Public attributes the shipped table does not list (newer editions add
# some, e.g. reviewer names and update date-times; Text Value inside Content
# Sequence items) are not kept when they can carry a name, a date or free
# text: removed, or replaced by a dummy inside the items of a sequence whose
# action is D (Content Sequence ...), where the item must stay valid.
UNLISTED_VRS = ('PN', 'DA', 'DT', 'TM', 'LO', 'SH', 'LT', 'ST', 'UT', 'UC')
# The short retain list of unlisted text attributes that identify nobody
# and that readers need: coded vocabulary (Code Sequence Macro), how pixels
# map to units, the device make and the reconstruction kernel.
RETAINED_TEXT = {
    0x00080100: 'CodeValue', 0x00080102: 'CodingSchemeDesignator',
    0x00080103: 'CodingSchemeVersion', 0x00080104: 'CodeMeaning',
    0x00080119: 'LongCodeValue', 0x00281054: 'RescaleType',
    0x00281055: 'WindowCenterWidthExplanation', 0x00283003: 'LUTExplanation',
    0x00283004: 'ModalityLUTType', 0x00080070: 'Manufacturer',
    0x00081090: 'ManufacturerModelName', 0x00181210: 'ConvolutionKernel',
}
# File meta attributes that name sending/receiving systems.
_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
_OFFSET_MIN_DAYS, _OFFSET_MAX_DAYS = 365, 3650

METHOD = ('DICOM PS3.15 Basic Application Confidentiality Profile',
          'Retain Longitudinal Temporal Information Modified Dates Option')
_METHOD_CODES = (('113100', 'Basic Application Confidentiality Profile'),
                 ('113107', 'Retain Longitudinal Temporal Information Modified Dates Option'))


@dataclass
class Changes:
    """What happened to one file, by attribute path, without any value."""

    removed: list[str] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)
    dummy: list[str] = field(default_factory=list)
    uids_replaced: list[str] = field(default_factory=list)
    dates_shifted: list[str] = field(default_factory=list)
    private_removed: int = 0
    burned_in_annotation: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(removed=self.removed, emptied=self.emptied, dummy=self.dummy,
                    uids_replaced=self.uids_replaced, dates_shifted=self.dates_shifted,
                    private_removed=self.private_removed,
                    burned_in_annotation=self.burned_in_annotation, notes=self.notes)


class Deidentifier:
    """Apply the Basic Profile with the Modified Dates Option to datasets.

    Args:
        key: the secret of the keyed hashes (UIDs, patient pseudonyms, date
            offsets); at least 16 bytes.
        profile: Table E.1-1 (default: the edition shipped with the plugin).
    """

    def __init__(self, key: bytes, profile: Profile | None = None):
        if len(key) < 16:
            raise ValueError('the de-identification key must be at least 16 bytes; make '
                             'one with: head -c 32 /dev/urandom > salt.bin')
        self._key = key
        self.profile = profile or load_profile()

    def __repr__(self) -> str:  # never show the key
        return f'Deidentifier(profile=PS3.15 {self.profile.edition})'

    def _digest(self, purpose: str, text: str) -> bytes:
        return hmac.new(self._key, f'{purpose}\0{text}'.encode('utf-8'),
                        hashlib.sha256).digest()

    def map_uid(self, uid: str) -> str:
        """The replacement of ``uid``: the same for the same key.

        Well-known UIDs of the DICOM registry (SOP classes, transfer
        syntaxes, well-known frames of reference) identify nobody and stay.
        """
        uid = str(uid).strip('\0 ')
        if not uid or UID(uid).is_valid and UID(uid).name != uid:
            return uid
        # "2.25." + a 128-bit integer: the UUID-derived root of PS3.5 B.2.
        return '2.25.' + str(int.from_bytes(self._digest('uid', uid)[:16], 'big'))

    def pseudonym(self, patient: str) -> str:
        """A stable dummy Patient ID for ``patient`` (keyed, irreversible)."""
        return 'ANON-' + self._digest('patient', patient).hex()[:16].upper()

    def offset_days(self, patient: str) -> int:
        """The patient's date offset in days (negative: dates move back)."""
        n = int.from_bytes(self._digest('date-offset', patient)[:8], 'big')
        return -(_OFFSET_MIN_DAYS + n % (_OFFSET_MAX_DAYS - _OFFSET_MIN_DAYS + 1))

    def hash_name(self, name: str) -> str:
        """A keyed hash (20 hex digits) for a file or folder name; no part
        of the name is kept (a suffix such as ``Doe.Jane`` is a name too)."""
        return self._digest('name', name).hex()[:20]

    # -- the dataset walk ------------------------------------------------

    def apply(self, ds: Dataset) -> Changes:
        """De-identify ``ds`` (with its ``file_meta``) in place."""
        changes = Changes()
        if getattr(ds, 'preamble', None) is not None:
            ds.preamble = bytes(128)  # free bytes: some writers put names there
        changes.burned_in_annotation = str(ds.get('BurnedInAnnotation', '')).upper() == 'YES'
        patient = _patient_identity(ds)
        walk = _Walk(self, self.offset_days(patient), self.pseudonym(patient), changes)
        walk.dataset(ds, '', in_dummy_sequence=False)
        meta = getattr(ds, 'file_meta', None)
        if meta is not None:
            for tag in _META_REMOVE:
                if tag in meta:
                    del meta[tag]
                    changes.removed.append(f'file_meta.{_name(tag)}')
            if 'SOPInstanceUID' in ds:
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientIdentityRemoved = 'YES'
        ds.DeidentificationMethod = list(METHOD) + [f'PS3.15 {self.profile.edition}']
        codes = Sequence()
        for value, meaning in _METHOD_CODES:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, 'DCM', meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = codes
        ds.LongitudinalTemporalInformationModified = 'MODIFIED'
        return changes


def _patient_identity(ds: Dataset) -> str:
    pid = str(ds.get('PatientID', '') or '').strip()
    if pid:
        return f"{pid}\0{str(ds.get('IssuerOfPatientID', '') or '').strip()}"
    return str(ds.get('PatientName', '') or '').strip()


def _name(tag) -> str:
    from pydicom.datadict import keyword_for_tag
    return keyword_for_tag(tag) or f'({tag >> 16:04X},{tag & 0xFFFF:04X})'


class _Walk:
    """One pass over a dataset tree; records changes by attribute path."""

    def __init__(self, owner: Deidentifier, offset: int, pseudonym: str, changes: Changes):
        self.owner, self.offset, self.pseudonym, self.changes = owner, offset, pseudonym, changes

    def dataset(self, ds: Dataset, prefix: str, in_dummy_sequence: bool) -> None:
        for elem in list(ds):
            tag = int(elem.tag)
            path = prefix + _name(tag)
            if elem.tag.is_private:
                del ds[tag]
                self.changes.private_removed += 1
                continue
            if tag & 0xFFFF == 0:  # group lengths (retired) go stale on any change
                del ds[tag]
                continue
            row = self.owner.profile.row_for(tag)
            vr = elem.VR
            if row is None:
                self.unlisted(ds, elem, path, in_dummy_sequence)
                continue
            self.act(ds, elem, row.action(vr), path, in_dummy_sequence)

    def unlisted(self, ds: Dataset, elem, path: str, in_dummy_sequence: bool) -> None:
        """A public attribute the table does not list."""
        vr = elem.VR
        if vr == 'SQ':
            self.items(elem, path, in_dummy_sequence)
        elif vr not in UNLISTED_VRS or int(elem.tag) in RETAINED_TEXT or elem.is_empty:
            return
        elif in_dummy_sequence:
            elem.value = dummy_value(vr)
            self.changes.dummy.append(path)
        else:
            del ds[elem.tag]
            self.changes.removed.append(path)

    def items(self, elem, path: str, in_dummy_sequence: bool) -> None:
        for i, item in enumerate(elem.value or ()):
            self.dataset(item, f'{path}[{i}].', in_dummy_sequence)

    def act(self, ds: Dataset, elem, action: str, path: str, in_dummy: bool) -> None:
        vr, changes = elem.VR, self.changes
        if action == REMOVE:
            del ds[elem.tag]
            changes.removed.append(path)
        elif action == EMPTY:
            if not elem.is_empty:
                elem.value = Sequence() if vr == 'SQ' else None
                changes.emptied.append(path)
        elif action == DUMMY:
            if vr == 'SQ':
                self.items(elem, path, True)
            elif int(elem.tag) == 0x00100020:  # Patient ID: a stable pseudonym
                elem.value = self.pseudonym
                changes.dummy.append(path)
            else:
                elem.value = dummy_value(vr.split(' ')[0])
                changes.dummy.append(path)
        elif action == UID_ACTION:
            if vr == 'SQ':
                self.items(elem, path, in_dummy)
            elif not elem.is_empty:
                values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
                mapped = [self.owner.map_uid(v) for v in values]
                elem.value = mapped if len(mapped) > 1 else mapped[0]
                changes.uids_replaced.append(path)
        elif action == CLEAN:
            self.shift(elem, path)
        elif action in (RECURSE, KEEP):
            if vr == 'SQ':
                self.items(elem, path, in_dummy)
        else:
            raise ValueError(f'PS3.15 table: unknown action {action!r} for {path}; '
                             'fix the row in perception_medical/deid/data')

    def shift(self, elem, path: str) -> None:
        """Action C of the Modified Dates Option: move by the patient's offset.

        The offset is whole days, so times of day (TM) keep their value and
        the time of day inside DT values is kept: intervals stay exact.
        """
        if elem.VR == 'TM' or elem.is_empty:
            return
        values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
        shifted = [_shift(str(v), elem.VR, self.offset) for v in values]
        if any(v is None for v in shifted):
            elem.value = None
            self.changes.emptied.append(path)
            self.changes.notes.append(f'{path}: not a valid {elem.VR}, emptied')
            return
        elem.value = shifted if len(shifted) > 1 else shifted[0]
        self.changes.dates_shifted.append(path)


def _shift(value: str, vr: str, days: int) -> str | None:
    """Shift a DA or DT value by ``days``, keeping its precision."""
    value = value.strip()
    if '-' in value and vr == 'DA':  # a range (queries): shift both ends
        parts = [_shift(p, vr, days) if p else '' for p in value.split('-')]
        return None if None in parts else '-'.join(parts)
    if vr == 'DA':
        value = value.replace('.', '')  # ACR-NEMA style YYYY.MM.DD
    match = re.match(r'\d{4,8}', value)
    if match is None or len(match.group()) % 2:
        return None
    digits = match.group()
    precision = len(digits)
    try:
        date = datetime.date(int(digits[:4]), int(digits[4:6] or 1), int(digits[6:8] or 1))
        date += datetime.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return date.strftime('%Y%m%d')[:precision] + value[precision:]
