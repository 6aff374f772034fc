"""The identifying values planted in synthetic CT studies, so that
de-identification and privacy tests can check that none leaks: made per
patient here, written by :func:`~perception_medical.synth.study.write_ct_study`
to ``planted_phi.json`` beside ``dicom/`` (never inside it), read back by
:func:`planted_phi`."""
from __future__ import annotations

import datetime
import json
import os
import string
from pathlib import Path

import numpy as np

PHI_FILE = 'planted_phi.json'


def planted_phi(study_dir: str | os.PathLike) -> dict:
    """Read ``planted_phi.json`` of a study written by
    :func:`~perception_medical.synth.study.write_ct_study`.

    Returns ``{'patients': [{'patient_folder', 'series_uids', 'values':
    {keyword: value}}], 'values': [every planted string]}``.
    """
    path = Path(study_dir) / PHI_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f'{path}: no planted PHI file; pass the folder given to '
            '`perception synth-ct OUT` (not OUT/dicom)')
    return json.loads(path.read_text())


def random_token(rng: np.random.Generator, n: int = 6) -> str:
    """``n`` random upper-case letters and digits."""
    alphabet = string.ascii_uppercase + string.digits
    return ''.join(alphabet[i] for i in rng.integers(len(alphabet), size=n))


def patient_phi(rng: np.random.Generator, index: int) -> dict:
    """Unique identifying values of patient ``index`` (DICOM keyword ->
    value), planted in every header of that patient's series."""
    tok = f'{random_token(rng)}{index:02d}'  # the index keeps values unique
    birth = datetime.date(1930, 1, 1) + datetime.timedelta(
        days=400 * index + int(rng.integers(0, 400)))
    study = datetime.date(2018, 1, 1) + datetime.timedelta(
        days=int(rng.integers(0, 1800)) + 7 * index)
    return {
        'PatientName': f'PHIFAMILY{tok}^PHIGIVEN{tok}',
        'PatientID': f'PHIID{tok}',
        'PatientBirthDate': birth.strftime('%Y%m%d'),
        'AccessionNumber': f'PHIACC{tok}',
        'InstitutionName': f'PHI Hospital {tok}',
        'ReferringPhysicianName': f'PHIDOCTOR{tok}^REFERRING',
        'PatientAddress': f'{index + 1} PHI Street {tok}',
        'StudyDate': study.strftime('%Y%m%d'),
    }
