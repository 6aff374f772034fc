"""Synthetic CT studies written as real DICOM with pydicom.

``write_ct_study(out)`` (and ``perception synth-ct OUT``) writes::

    OUT/dicom/patient_NN/series_M/<shuffled>.dcm   one CT series per folder
    OUT/annotations.csv      LUNA16: seriesuid,coordX,coordY,coordZ,diameter_mm
    OUT/slice_boxes.csv      sop_instance_uid,x1,y1,x2,y2,label (pixel edges)
    OUT/manifest.json        geometry and lesions per series (no PHI)
    OUT/planted_phi.json     the identifying values planted in the headers
    OUT/organs/patient_NN/series_M/organs_seg.dcm, organs.npz
    OUT/organs/organs.json   exact organ masks (``organ_masks=True``,
                             ``--organ-masks``; :mod:`~perception_medical.synth.organs`)

The images come from :class:`~perception_medical.synth.phantom.ChestPhantom`
(body outline, fat, muscle, lungs with vessels, heart, aorta, spine, ribs,
liver), CT-like correlated noise, stored through RescaleSlope/Intercept.
Lesions are spheres or lobulated spheres of 3-30 mm: lung nodules (ground
glass to solid) and one liver lesion whose contrast against the liver is
50-100 HU.

Scanners: each patient is scanned on one of the ``scanners``
(:mod:`~perception_medical.synth.scanners`: manufacturer, model, kVp,
noise, slice thickness; round-robin, so every scanner has patients),
written into the headers with the patient's sex and age, so subgroup
reports have groups; ``manifest.json`` records them per series.

Every patient carries unique identifying values (name, ID, birth date,
accession number, institution, referring physician, address, and a private
tag repeating the name; see :mod:`~perception_medical.synth.phi`) so
de-identification tests can check that none leaks. ``planted_phi.json``
lies beside ``dicom/``, never inside it, so a tool pointed at the DICOM
folder cannot copy it.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from perception.progress import progress
from perception_medical.synth.organs import (
    ORGANS_DIR,
    ORGANS_INDEX,
    organ_volume,
    write_organ_masks,
)
from perception_medical.synth.phantom import ChestPhantom
from perception_medical.synth.phi import PHI_FILE, patient_phi
from perception_medical.synth.scanners import DEFAULT_SCANNER, ScannerProfile

CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2'
MANIFEST_FILE = 'manifest.json'
# (slope, intercept, signed): the encodings scanners commonly use
_ENCODINGS = [(1.0, -1024.0, False), (1.0, 0.0, True), (0.5, -1000.0, False)]


@dataclass
class SynthStudy:
    """What :func:`write_ct_study` wrote.

    Attributes:
        root: the output folder.
        dicom_dir: ``root/dicom`` (one folder per series below it).
        series: per-series manifest entries (uid, folder, geometry, lesions).
        phi: per-patient planted identifying values (DICOM keyword -> value).
        organs: series UID -> its organ masks (``seg``, ``labels``: paths
            relative to ``root``; ``classes``), where written; also in
            ``root/organs/organs.json``.
    """

    root: Path
    dicom_dir: Path
    series: list[dict]
    phi: list[dict]
    organs: dict[str, dict] = field(default_factory=dict)

    @property
    def annotations_csv(self) -> Path:
        return self.root / 'annotations.csv'

    @property
    def slice_boxes_csv(self) -> Path:
        return self.root / 'slice_boxes.csv'

    def phi_values(self) -> list[str]:
        """Every planted identifying string (for leak checks)."""
        return sorted({v for p in self.phi for v in p['values'].values()})


def _orientation(rng: np.random.Generator, oblique: bool) -> np.ndarray:
    """Rows: row direction, column direction, slice normal (LPS)."""
    if not oblique:
        return np.eye(3)
    ax, az = np.deg2rad(rng.uniform(12, 25)), np.deg2rad(rng.uniform(8, 20))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)],
                   [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0],
                   [0, 0, 1]])
    return (rz @ rx).T  # rotated axes, as rows


def _ct_noise(rng, shape, sigma_hu: float) -> np.ndarray:
    # CT noise is spatially correlated (reconstruction kernel): blurred white
    # noise rescaled to the wanted standard deviation
    white = rng.standard_normal(shape).astype(np.float32)
    blurred = cv2.GaussianBlur(white, (0, 0), 0.8)
    return blurred * (sigma_hu / max(float(blurred.std()), 1e-6))


def _age(phi: dict) -> str:
    """DICOM PatientAge ('064Y') from the planted birth and study dates."""
    birth, study = phi['PatientBirthDate'], phi['StudyDate']
    years = int(study[:4]) - int(birth[:4]) - (study[4:] < birth[4:])
    return f'{years:03d}Y'


def _base_dataset(phi, uids, geometry, encoding, k, n_slices, tok,
                  scanner: ScannerProfile, sex: str):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = uids['sop']
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset('', {}, file_meta=meta, preamble=b'\0' * 128)
    ds.SpecificCharacterSet = 'ISO_IR 100'
    ds.ImageType = ['ORIGINAL', 'PRIMARY', 'AXIAL']
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = uids['sop']
    ds.StudyInstanceUID = uids['study']
    ds.SeriesInstanceUID = uids['series']
    ds.FrameOfReferenceUID = uids['frame']
    for keyword, value in phi.items():
        setattr(ds, keyword, value)
    ds.SeriesDate = ds.ContentDate = ds.StudyDate
    ds.StudyTime = ds.SeriesTime = '101500'
    ds.StudyID = '1'
    ds.PatientSex = sex
    ds.PatientAge = _age(phi)
    ds.Modality = 'CT'
    ds.Manufacturer = scanner.manufacturer
    ds.ManufacturerModelName = scanner.model
    ds.StudyDescription = 'CHEST SYNTHETIC'
    ds.SeriesDescription = f'CHEST {geometry["kernel"]}'
    ds.SeriesNumber = geometry['series_number']
    ds.InstanceNumber = k + 1
    ds.BodyPartExamined = 'CHEST'
    ds.KVP = f'{scanner.kvp:g}'
    ds.ConvolutionKernel = geometry['kernel']
    ds.SliceThickness = f'{geometry["spacing"][0]:.4g}'
    ds.SpacingBetweenSlices = f'{geometry["spacing"][0]:.4g}'
    ds.PatientPosition = 'FFS'
    ds.ImagePositionPatient = [f'{v:.6f}' for v in geometry['positions'][k]]
    ds.ImageOrientationPatient = [f'{v:.8f}' for v in
                                  np.concatenate(geometry['axes'][:2])]
    ds.SliceLocation = f'{geometry["positions"][k] @ geometry["axes"][2]:.4f}'
    ds.PixelSpacing = [f'{geometry["spacing"][1]:.6g}',
                       f'{geometry["spacing"][2]:.6g}']
    slope, intercept, signed = encoding
    ds.RescaleSlope, ds.RescaleIntercept = f'{slope:g}', f'{intercept:g}'
    ds.RescaleType = 'HU'
    ds.WindowCenter = ['40', '-600']
    ds.WindowWidth = ['400', '1500']
    ds.WindowCenterWidthExplanation = ['MEDIASTINUM', 'LUNG']
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(signed)
    # a private tag repeating the name: de-identification must drop it
    block = ds.private_block(0x0011, 'PERCEPTION SYNTH PHI', create=True)
    block.add_new(0x01, 'LO', phi['PatientName'])
    block.add_new(0x02, 'LO', f'private note {tok}')
    return ds


def _geometry(rng, size, n_slices, fov_mm, z_center, oblique, number,
              coverage_mm) -> dict:
    axes = _orientation(rng, oblique)
    dz = coverage_mm / n_slices
    dxy = fov_mm / size
    center = np.array([0.0, 5.0, z_center])
    origin = (center - (size / 2 - 0.5) * dxy * (axes[0] + axes[1])
              - (n_slices - 1) / 2 * dz * axes[2])
    positions = [origin + k * dz * axes[2] for k in range(n_slices)]
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = (dz * axes[2],
                                                   dxy * axes[1],
                                                   dxy * axes[0])
    affine[:3, 3] = origin
    return dict(axes=axes, spacing=(dz, dxy, dxy), positions=positions,
                affine=affine, series_number=number,
                kernel=['STANDARD', 'LUNG'][number % 2])


def _slice_boxes(lesions, geometry, size, sop_uids) -> list[tuple]:
    """Boxes of each lesion's sphere section on every slice it crosses."""
    rows = []
    axes, (_, dxy, _) = geometry['axes'], geometry['spacing']
    for k, pos in enumerate(geometry['positions']):
        for les in lesions:
            offset = les.center - pos
            d = float(offset @ axes[2])
            if abs(d) >= les.radius:
                continue
            rs = np.sqrt(les.radius ** 2 - d ** 2) / dxy
            col, row = offset @ axes[0] / dxy, offset @ axes[1] / dxy
            box = np.array([col - rs, row - rs, col + rs, row + rs]) + 0.5
            box = np.clip(box, 0, size)
            if box[2] > box[0] and box[3] > box[1]:
                rows.append((sop_uids[k], *[f'{v:.3f}' for v in box], 0))
    return rows


def write_ct_study(out: str | os.PathLike, n_patients: int = 3,
                   series_per_patient: int = 1, size: int = 256,
                   n_slices: int = 48, coverage_mm: float = 240.0,
                   fov_mm: float = 380.0, lesions_per_patient: int = 3,
                   oblique: bool = False, noise_hu: float | None = None,
                   seed: int = 0, overwrite: bool = False,
                   scanners: Sequence[ScannerProfile | dict] | None = None,
                   quiet: bool | None = None,
                   organ_masks: bool = False) -> SynthStudy:
    """Write a synthetic CT study (see the module docstring for the layout).

    Args:
        out: output folder (created). An existing ``out/dicom`` is an
            error unless ``overwrite`` (then it is deleted first: stale
            slices with other random names would corrupt the series).
        n_patients: patients, each with ``series_per_patient`` series of the
            same anatomy and lesions (same FrameOfReferenceUID).
        size: rows = columns of every slice.
        n_slices: slices per series, ``coverage_mm / n_slices`` apart.
        fov_mm: reconstruction field of view (pixel spacing = fov / size).
        lesions_per_patient: lung nodules per patient (plus one liver
            lesion where the liver is covered).
        oblique: tilt every series' slice orientation by 12-25 degrees about
            x and 8-20 degrees about z (a consistent oblique stack).
        noise_hu: standard deviation of the correlated image noise of
            every scanner (None: each scanner's own ``noise_hu``).
        seed: everything (anatomy, PHI, UIDs, names) follows from it.
        scanners: profiles (or their dicts); patient ``p`` is scanned on
            ``scanners[p % len(scanners)]``; None: one generic scanner
            (12 HU noise). A profile's ``slice_thickness_mm`` sets the
            slice spacing (and the slice count over ``coverage_mm``).
        quiet: no progress output (None: the process setting).
        organ_masks: also write each series' exact organ masks (lungs,
            liver, heart, body) as DICOM SEG and ``organs.npz`` below
            ``out/organs`` (the other outputs stay the same), and list them
            in the manifest entry's ``organs``.

    Returns:
        :class:`SynthStudy`. A 2-patient 64x64x24 study takes about a second.
    """
    from pydicom.uid import generate_uid
    root = Path(out)
    dicom_dir = root / 'dicom'
    if dicom_dir.exists():
        if not overwrite:
            raise FileExistsError(
                f'{dicom_dir} exists; choose an empty folder or pass '
                'overwrite=True (--overwrite) to replace the study')
        shutil.rmtree(dicom_dir)
        # the masks of the old study would not match the new one
        shutil.rmtree(root / ORGANS_DIR, ignore_errors=True)
    dicom_dir.mkdir(parents=True)
    z_center = -20.0
    z_range = (z_center - coverage_mm / 2, z_center + coverage_mm / 2)
    manifest, phi_records, annotations, boxes = [], [], [], []
    organs: dict[str, dict] = {}
    profiles = [ScannerProfile(**s) if isinstance(s, dict) else s
                for s in (scanners or [DEFAULT_SCANNER])]
    bar = progress(total=n_patients, desc='synth-ct', unit='patient',
                   quiet=quiet)
    for p in range(n_patients):
        scanner = profiles[p % len(profiles)]
        noise = scanner.noise_hu if noise_hu is None else noise_hu
        slices = n_slices if scanner.slice_thickness_mm is None else max(
            int(round(coverage_mm / scanner.slice_thickness_mm)), 2)
        # its own stream: the anatomy of a seed does not change with it
        sex = 'MF'[int(np.random.default_rng([seed, p, 5]).integers(2))]
        prng = np.random.default_rng([seed, p])
        phi = patient_phi(prng, p)
        tok = phi['PatientID'][5:]
        phantom = ChestPhantom(prng, z_range, lesions_per_patient)
        study_uid = generate_uid(entropy_srcs=[str(seed), str(p), 'study'])
        frame_uid = generate_uid(entropy_srcs=[str(seed), str(p), 'frame'])
        series_uids = []
        for s in range(series_per_patient):
            number = s + 1
            geometry = _geometry(prng, size, slices, fov_mm, z_center,
                                 oblique, number, coverage_mm)
            series_uid = generate_uid(
                entropy_srcs=[str(seed), str(p), str(s), 'series'])
            series_uids.append(series_uid)
            folder = dicom_dir / f'patient_{p:02d}' / f'series_{s}'
            folder.mkdir(parents=True, exist_ok=True)
            encoding = _ENCODINGS[(p + s) % len(_ENCODINGS)]
            names = [f'{n:012x}.dcm' for n in
                     prng.choice(16 ** 12, size=slices, replace=False)]
            sop_uids = [generate_uid(entropy_srcs=[series_uid, str(k)])
                        for k in range(slices)]
            axes, (_, dxy, _) = geometry['axes'], geometry['spacing']
            headers = []
            for k in range(slices):
                hu = phantom.sample_slice(geometry['positions'][k], axes,
                                          size, dxy)
                hu += _ct_noise(prng, hu.shape, noise)
                slope, intercept, signed = encoding
                stored = np.round((np.maximum(hu, -1024) - intercept) / slope)
                dtype = np.int16 if signed else np.uint16
                info = np.iinfo(dtype)
                stored = np.clip(stored, info.min, info.max).astype(dtype)
                ds = _base_dataset(phi, dict(sop=sop_uids[k], study=study_uid,
                                             series=series_uid,
                                             frame=frame_uid),
                                   geometry, encoding, k, slices, tok,
                                   scanner, sex)
                ds.Rows = ds.Columns = size
                ds.PixelData = stored.tobytes()
                ds.save_as(folder / names[k], enforce_file_format=True)
                headers.append(ds)
            for les in phantom.lesions:
                annotations.append((series_uid, *[f'{v:.4f}' for v in
                                                  les.center],
                                    f'{les.diameter_mm:.4f}'))
            boxes.extend(_slice_boxes(phantom.lesions, geometry, size,
                                      sop_uids))
            manifest.append(dict(
                series_uid=series_uid, patient_folder=f'patient_{p:02d}',
                folder=str(folder.relative_to(root)),
                shape=[slices, size, size],
                scanner=dict(scanner.to_dict(), noise_hu=noise),
                patient_sex=sex,
                spacing=[float(v) for v in geometry['spacing']],
                affine=geometry['affine'].tolist(), oblique=bool(oblique),
                rescale_slope=encoding[0], rescale_intercept=encoding[1],
                lesions=[dict(center_lps=[float(v) for v in les.center],
                              diameter_mm=les.diameter_mm, hu=les.hu,
                              background_hu=les.background_hu,
                              contrast_hu=les.contrast_hu, organ=les.organ,
                              lobulated=bool(les.lobes))
                         for les in phantom.lesions]))
            if organ_masks:  # no random draws: the images stay the same
                organs[series_uid] = write_organ_masks(
                    root, str(folder.relative_to(dicom_dir)),
                    organ_volume(phantom, geometry['positions'], axes, size,
                                 dxy), headers, series_uid, geometry['affine'])
        phi_records.append(dict(patient_folder=f'patient_{p:02d}',
                                series_uids=series_uids, values=phi))
        bar.update()
    bar.close()
    with open(root / 'annotations.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['seriesuid', 'coordX', 'coordY', 'coordZ',
                         'diameter_mm'])
        writer.writerows(annotations)
    with open(root / 'slice_boxes.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['sop_instance_uid', 'x1', 'y1', 'x2', 'y2', 'label'])
        writer.writerows(boxes)
    (root / MANIFEST_FILE).write_text(json.dumps(
        dict(series=manifest, noise_hu=noise_hu, seed=seed,
             scanners=[s.to_dict() for s in profiles]), indent=1))
    study = SynthStudy(root, dicom_dir, manifest, phi_records, organs)
    if organ_masks:  # beside the manifest, which stays as it was
        (root / ORGANS_DIR / ORGANS_INDEX).write_text(json.dumps(organs,
                                                                 indent=1))
    (root / PHI_FILE).write_text(json.dumps(dict(
        note='identifying values planted in the DICOM headers of dicom/; '
        'none of them may appear in de-identified output',
        patients=phi_records, values=study.phi_values()), indent=1))
    return study
