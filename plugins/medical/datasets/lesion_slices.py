"""``LesionSliceClassificationDataset``: slice-level "has lesion" labels
for CT classification, from the same studies, 2.5D slabs, patient-level
split and annotation inputs as :class:`LesionDetectionDataset`.

Each sample is a slab with ``gt_label`` 1 ('lesion') when its centre slice
shows a lesion of at least ``min_size_mm`` (``has_lesion``), else 0 ('no
lesion'). A slice whose only lesions are smaller than ``min_size_mm`` (an
ignore region for the detector) is neither clearly positive nor negative:
left out by default (``ignored_slices='drop'``), counted in the load line.
"""
from __future__ import annotations

import numpy as np
from mmengine.logging import print_log

from perception.registry import DATASETS

from .lesions import LesionDetectionDataset

#: the detection fields this dataset removes (PackInputs would pack them
#: into ``gt_instances`` and RandomFlip would move them)
DETECTION_FIELDS = ('gt_bboxes', 'gt_labels', 'gt_ignore_flags')
IGNORED_SLICES = ('drop', 'negative', 'positive')


@DATASETS.register_module()
class LesionSliceClassificationDataset(LesionDetectionDataset):
    """CT slabs labelled 'no lesion' (0) or 'lesion' (1) by their centre
    slice.

    Samples carry ``gt_label``, ``has_lesion`` (what
    :class:`~perception_medical.datasets.sampler.LesionBalancedSampler`
    reads), ``true_class`` (the label's name, a meta key for per-class
    reports with ``SubgroupMetric``) and the CT meta keys of
    :class:`LesionDetectionDataset`; no boxes.

    Args:
        ignored_slices: what to do with slices whose only lesions are
            under ``min_size_mm``: 'drop' (default, in every split),
            'negative' or 'positive'.
        Others as in :class:`LesionDetectionDataset` (``filter_empty``
            would drop every negative and is refused).
    """

    METAINFO = dict(classes=('no lesion', 'lesion'))

    def __init__(self, ignored_slices: str = 'drop',
                 filter_empty: bool = False, **kwargs) -> None:
        if ignored_slices not in IGNORED_SLICES:
            raise ValueError(
                'LesionSliceClassificationDataset: ignored_slices must be '
                f"one of {', '.join(IGNORED_SLICES)}, got {ignored_slices!r}")
        if filter_empty:
            raise ValueError(
                'LesionSliceClassificationDataset: filter_empty=True would '
                'leave out every slice without a lesion (the negatives); '
                'remove it (LesionBalancedSampler balances the classes)')
        self.ignored_slices = ignored_slices
        self.counts: dict[str, int] = {}
        super().__init__(filter_empty=False, **kwargs)

    def _boxes(self, series: list[dict]) -> dict[tuple[str, int], list]:
        # box CSV labels are the detector's class indices (0: lesion), not
        # this dataset's ('no lesion', 'lesion'): validate them as such
        classes = self._metainfo.get('classes')
        self._metainfo['classes'] = LesionDetectionDataset.METAINFO['classes']
        try:
            return super()._boxes(series)
        finally:
            self._metainfo['classes'] = classes

    def load_data_list(self) -> list[dict]:
        classes = self.METAINFO['classes']
        data, counts = [], dict.fromkeys(classes, 0)
        ignored = 0
        for info in super().load_data_list():
            flags = np.asarray(info['gt_ignore_flags'], bool)
            only_ignored = not info['has_lesion'] and bool(flags.any())
            for key in DETECTION_FIELDS:
                info.pop(key, None)
            label = int(info['has_lesion'])
            if only_ignored:
                ignored += 1
                if self.ignored_slices == 'drop':
                    continue
                label = int(self.ignored_slices == 'positive')
                info['has_lesion'] = bool(label)
            info['gt_label'] = label
            info['true_class'] = classes[label]
            counts[classes[label]] += 1
            data.append(info)
        self.counts = dict(counts, ignored_only=ignored)
        what = {'drop': 'left out', 'negative': "kept as 'no lesion'",
                'positive': "kept as 'lesion'"}[self.ignored_slices]
        print_log(f'LesionSliceClassificationDataset({self.split}): '
                  + ', '.join(f'{c} {counts[c]}' for c in classes)
                  + f', {ignored} slices with only sub-{self.min_size_mm:g}-mm '
                  f'lesions {what}', logger='current')
        return data

