"""Label volumes written as DICOM Segmentation (SEG) objects with highdicom,
aligned to their source series: one BINARY segment per class (background
excluded), one frame per source slice and segment, each frame referencing
its source instance (Derivation Image Sequence) and carrying its plane
position, so :func:`~perception_medical.dicom.seg_read.read_seg` (or any
viewer) puts it back on the right slice.

Like the lesion SR (:mod:`perception_medical.lesions.sr`), the SEG is a
clinical object that goes back into the source study: DICOM requires the
source's Patient and General Study modules, which highdicom copies. Nothing
else is copied (institution, addresses, private tags are removed).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from perception.errors import UserError

#: (manufacturer, model) recorded as the device that made the SEG
DEVICE = ('perception', 'perception segmentor')
#: known class names -> (SNOMED CT code, meaning) of the segmented property
SNOMED = {'lungs': ('39607008', 'Lung'), 'lung': ('39607008', 'Lung'),
          'liver': ('10200004', 'Liver'), 'heart': ('80891009', 'Heart'),
          'body': ('38266002', 'Entire body')}
#: a local coding scheme for class names without a SNOMED CT code
LOCAL_SCHEME = '99PERCEPTION'


class SegWriteError(UserError, ValueError):
    """A label volume cannot be written as a SEG of its sources."""


def _property(name: str):
    from pydicom.sr.coding import Code
    if name.lower() in SNOMED:
        value, meaning = SNOMED[name.lower()]
        return Code(value, 'SCT', meaning)
    return Code(name[:16].upper().replace(' ', '_'), LOCAL_SCHEME, name)


def _descriptions(class_names: Sequence[str], algorithm: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code
    ident = hd.AlgorithmIdentificationSequence(
        name=algorithm, version='1',
        family=Code('ALGORITHM', LOCAL_SCHEME, 'perception algorithm'))
    return [hd.seg.SegmentDescription(
        segment_number=number, segment_label=name,
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=_property(name),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=ident)
        for number, name in enumerate(class_names) if number > 0]


def write_seg(path: str | os.PathLike, labels: np.ndarray,
              class_names: Sequence[str], sources: Sequence,
              description: str = 'perception segmentation',
              algorithm: str = 'perception segmentor',
              series_number: int = 991,
              uid_seed: Sequence[str] | None = None) -> str:
    """Write a label volume as a SEG of its source slices.

    Args:
        path: the ``.dcm`` file to write.
        labels: (z, y, x) integer labels, 0 background, ``labels[k]`` on
            ``sources[k]``; values index ``class_names``.
        class_names: name of each label (index 0: background, not written).
        sources: one pydicom Dataset (header; pixels not needed) per slice
            of ``labels``, single-frame instances of one series.
        description: the SEG's SeriesDescription.
        algorithm: name of the algorithm that made the labels.
        series_number: the SEG series' number.
        uid_seed: strings the SEG's UIDs follow from (the same seed, the
            same UIDs); None: random UIDs.

    Returns:
        the path written.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    from perception_medical.lesions.sr import scrub_identifiers, with_type2
    labels = np.asarray(labels)
    if labels.ndim != 3 or len(labels) != len(sources):
        raise SegWriteError(f'{path}: labels {labels.shape} need one (y, x) '
                            f'slice per source instance ({len(sources)})')
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise SegWriteError(
            f'{path}: labels span {int(labels.min())}..{int(labels.max())} '
            f'but there are {len(class_names)} class names; name every label')
    shapes = {(int(s.Rows), int(s.Columns)) for s in sources}
    if shapes != {labels.shape[1:]}:
        raise SegWriteError(f'{path}: label slices are {labels.shape[1:]} but '
                            f'the source images are {sorted(shapes)} (Rows, '
                            'Columns); predict in source pixels')

    def uid(part: str) -> str:
        if uid_seed is None:
            return generate_uid()
        return generate_uid(entropy_srcs=[*uid_seed, part])

    seg = hd.seg.Segmentation(
        source_images=[with_type2(s) for s in sources],
        pixel_array=labels.astype(np.uint8 if len(class_names) <= 256
                                  else np.uint16),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_descriptions(class_names, algorithm),
        series_instance_uid=uid('series'), series_number=series_number,
        sop_instance_uid=uid('sop'), instance_number=1,
        manufacturer=DEVICE[0], manufacturer_model_name=DEVICE[1],
        software_versions='1', device_serial_number='0',
        omit_empty_frames=True)
    seg.SeriesDescription = description
    scrub_identifiers(seg)
    seg.save_as(os.fspath(path), enforce_file_format=True)
    return os.fspath(path)
