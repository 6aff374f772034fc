"""Lesion findings as a DICOM Structured Report: TID 1500 Measurement
Report (Comprehensive 3D SR) written with highdicom.

Each finding is one planar ROI group (TID 1410): an ellipse (SCOORD3D,
a circle of the finding's diameter centred on its ``center_lps``, in the
plane of the series' slices, in the source's frame of reference), finding
type *Nodule* (SCT 27925004), a *Diameter* measurement (SCT 81827009, mm)
and the source image of its highest-scoring slice; the report references
every source instance a finding lies on (evidence) so a viewer shows it on
the right images.

The SR is a clinical object that goes back into the source study: as
DICOM requires, it carries the source's Patient module (name, ID, birth
date, sex) and General Study module (study UID, date, time, ID, accession
number, referring physician) copied from the source headers by highdicom.
Nothing else is copied (no institution, address or private tags), and no
other output of perception holds these values.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

#: (device name, manufacturer) recorded as the observer device
DEVICE = ('perception lesion detector', 'perception')
#: identifying attributes outside the patient and study modules that
#: highdicom may copy from the sources (e.g. into the Contributing
#: Equipment Sequence): removed wherever they occur
NOT_COPIED = ('InstitutionName', 'InstitutionAddress',
              'InstitutionalDepartmentName', 'StationName', 'OperatorsName',
              'PerformingPhysicianName', 'PatientAddress',
              'PatientTelephoneNumbers', 'OtherPatientIDs',
              'OtherPatientNames', 'DeviceSerialNumber')


#: type 2 attributes of the patient and study modules highdicom copies
#: from the evidence (empty where a source lacks them)
TYPE2 = ('PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex',
         'StudyID', 'StudyDate', 'StudyTime', 'AccessionNumber',
         'ReferringPhysicianName')


def with_type2(ds):
    """A copy of a source header with :data:`TYPE2` present."""
    import copy
    ds = copy.deepcopy(ds)
    for keyword in TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, '')
    return ds


def scrub_identifiers(ds) -> None:
    """Remove :data:`NOT_COPIED` and private tags at every depth."""
    ds.remove_private_tags()
    for keyword in NOT_COPIED:
        if keyword in ds:
            delattr(ds, keyword)
    for element in ds:
        if element.VR == 'SQ':
            for item in element.value:
                scrub_identifiers(item)


def _ellipse(center: np.ndarray, diameter: float, row_dir: np.ndarray,
             col_dir: np.ndarray) -> np.ndarray:
    """SCOORD3D ELLIPSE points: major axis ends, then minor axis ends."""
    r = diameter / 2.0
    return np.array([center - r * row_dir, center + r * row_dir,
                     center - r * col_dir, center + r * col_dir])


def ellipse_center_diameter(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and diameter (major axis) of an SR ELLIPSE's four points."""
    points = np.asarray(points, np.float64).reshape(4, 3)
    return points[:2].mean(0), float(np.linalg.norm(points[1] - points[0]))


def write_sr(path: str | os.PathLike, findings: Sequence[dict],
             affine: np.ndarray, sources: dict[int, object],
             series_number: int = 990) -> str:
    """Write the findings of one series as a TID 1500 SR.

    Args:
        path: the ``.dcm`` file to write.
        findings: finding dicts (``center_lps``, ``diameter_mm``, ``score``,
            ``slice_range``, ``slices``) of one series.
        affine: the series' 4x4 index (z, y, x, 1) -> LPS affine (the
            slice plane's directions).
        sources: slice index -> the source slice's header (pydicom
            Dataset, pixels not needed), for every slice a finding lies
            on; at least one.

    Returns:
        the path written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid
    if not sources:
        raise ValueError('write_sr: no source instances to reference')
    evidence = [with_type2(sources[k]) for k in sorted(sources)]
    first = evidence[0]
    affine = np.asarray(affine, np.float64)
    col_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])  # along rows
    row_dir = affine[:3, 2] / np.linalg.norm(affine[:3, 2])  # along columns
    frame_uid = str(first.FrameOfReferenceUID)
    groups = []
    for i, f in enumerate(findings):
        centre = np.asarray(f['center_lps'], np.float64)
        best = max(f['slices'], key=lambda s: s['score'])['slice_index'] \
            if f.get('slices') else f['slice_range'][0]
        source = sources.get(best, first)
        region = hd.sr.ImageRegion3D(
            graphic_type=hd.sr.GraphicTypeValues3D.ELLIPSE,
            graphic_data=_ellipse(centre, float(f['diameter_mm']), row_dir,
                                  col_dir),
            frame_of_reference_uid=frame_uid)
        tracking = hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier=f'finding {i + 1}')
        diameter = hd.sr.Measurement(
            name=codes.SCT.Diameter, value=float(f['diameter_mm']),
            unit=codes.UCUM.Millimeter, algorithm_id=hd.sr.AlgorithmIdentification(
                name=DEVICE[0], version='1'),
            referenced_images=[hd.sr.SourceImageForMeasurement.from_source_image(
                source)])
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_region=region,
            finding_type=codes.SCT.Nodule, measurements=[diameter],
            algorithm_id=hd.sr.AlgorithmIdentification(name=DEVICE[0],
                                                       version='1')))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=DEVICE[0], manufacturer_name=DEVICE[1]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
        referenced_images=evidence)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report,
        series_instance_uid=generate_uid(), series_number=series_number,
        sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=DEVICE[1], is_complete=True)
    sr.SeriesDescription = 'perception lesion findings'
    scrub_identifiers(sr)
    sr.save_as(os.fspath(path), enforce_file_format=True)
    return os.fspath(path)


def read_sr_findings(path: str | os.PathLike) -> list[dict]:
    """Centres and diameters of the ELLIPSE ROIs of an SR written by
    :func:`write_sr`, read back with highdicom (for checks)."""
    import highdicom as hd
    import pydicom
    sr = hd.sr.srread(os.fspath(path)) if hasattr(hd.sr, 'srread') else \
        hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(os.fspath(path)))
    out = []
    for group in sr.content.get_planar_roi_measurement_groups():
        region = group.roi
        centre, diameter = ellipse_center_diameter(region.value)
        measured = [m.value for m in group.get_measurements()]
        out.append(dict(center_lps=centre.tolist(), diameter_mm=diameter,
                        measured_diameter_mm=float(measured[0]) if measured
                        else None,
                        frame_of_reference_uid=region.frame_of_reference_uid))
    return out
