"""A picture of a synthetic CT study: windowed slices through its lesions."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .study import SynthStudy


def save_study_picture(study: SynthStudy, path: str,
                       windows: Sequence = ('lung', 'mediastinum', 'liver',
                                            'bone')) -> str:
    """Picture of the first series: the central slice of up to three of its
    lesions (largest lung nodule, liver lesion, smallest nodule), each row
    through ``windows``, lesion boxes outlined."""
    from perception_medical.datasets.lesions import lesion_sections
    from perception_medical.dicom.series import load_series
    from perception_medical.windows import save_window_montage
    entry = study.series[0]
    volume = load_series(study.root / entry['folder'])
    lesions = sorted(entry['lesions'], key=lambda les: -les['diameter_mm'])
    lung = [les for les in lesions if les['organ'] == 'lung']
    liver = [les for les in lesions if les['organ'] == 'liver']
    chosen = (lung[:1] + liver[:1] + lung[-1:])[:3]
    rows, titles, boxes = [], [], []
    for les in chosen:
        sections = lesion_sections(volume.affine, volume.array.shape,
                                   np.array(les['center_lps']),
                                   les['diameter_mm'])
        k = max(sections, key=lambda sec: sec[2])[0]
        rows.append(volume.array[k])
        titles.append(f"slice {k}: {les['organ']} lesion "
                      f"{les['diameter_mm']:.0f} mm, "
                      f"{les['contrast_hu']:+.0f} HU")
        boxes.append([box for entry_les in entry['lesions']
                      for kk, box, _ in lesion_sections(
                          volume.affine, volume.array.shape,
                          np.array(entry_les['center_lps']),
                          entry_les['diameter_mm']) if kk == k])
    return save_window_montage(rows, list(windows), path, titles=titles,
                               boxes=boxes)
