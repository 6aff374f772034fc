"""Scene classification from BDD100K frame attributes (``weather``,
``timeofday``, ``scene`` of a ``det_20`` / 2018 Scalabel label file); the
synthetic drives write theirs from their lighting and weather.

Frames whose attribute is ``undefined`` (or missing) are left out and
counted in the load summary; any other value not among ``classes`` is an
error naming the file, the frame and the value.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Sequence

from mmengine.logging import print_log

from perception.data import PerceptionDataset
from perception.errors import UserError
from perception.registry import DATASETS

from .bdd100k import _frames_in

#: BDD100K's values of each frame attribute (its label docs).
ATTRIBUTE_CLASSES = {
    'timeofday': ('daytime', 'dawn/dusk', 'night'),
    'weather': ('clear', 'overcast', 'partly cloudy', 'rainy', 'snowy',
                'foggy'),
    'scene': ('city street', 'highway', 'residential', 'parking lot',
              'gas stations', 'tunnel'),
}
UNDEFINED = ('undefined', '', None)


class SceneLabelError(UserError, ValueError):
    """A frame's attribute value is not one of the classes."""


@DATASETS.register_module()
class Bdd100kSceneDataset(PerceptionDataset):
    """One sample per frame, labelled by a frame attribute.

    Args:
        ann_file: Scalabel JSON (or a folder of them), under ``data_root``.
        data_prefix: ``dict(img='images/100k/train')``, under ``data_root``.
        attribute: 'timeofday', 'weather' or 'scene'.
        classes: the values to tell apart (default all of BDD100K's for the
            attribute); a subset is fine, then other values are errors.
        Others as in :class:`~perception.data.PerceptionDataset`.
    """

    def __init__(self, ann_file: str = '', data_root: str = '',
                 data_prefix: dict | None = None,
                 attribute: str = 'timeofday',
                 classes: Sequence[str] | None = None,
                 pipeline: Sequence = (), **kwargs) -> None:
        if attribute not in ATTRIBUTE_CLASSES and not classes:
            raise ValueError(
                f'Bdd100kSceneDataset: attribute {attribute!r} has no '
                f"default classes; give classes=[...] or one of "
                f"{', '.join(ATTRIBUTE_CLASSES)}")
        self.attribute = attribute
        self.classes = tuple(classes or ATTRIBUTE_CLASSES[attribute])
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo.setdefault('classes', self.classes)
        super().__init__(ann_file=ann_file, data_root=data_root,
                         data_prefix=data_prefix or dict(img=''),
                         pipeline=list(pipeline), metainfo=metainfo,
                         **kwargs)

    def load_data_list(self) -> list[dict]:
        folder = self.data_prefix.get('img', '')
        counts, undefined, data = Counter(), 0, []
        for file, index, frame in _frames_in(self.ann_file):
            value = (frame.get('attributes') or {}).get(self.attribute)
            if value in UNDEFINED:
                undefined += 1
                continue
            if value not in self.classes:
                raise SceneLabelError(
                    f'{file}: frame {index} ({frame.get("name")}) has '
                    f'{self.attribute}={value!r}, not one of '
                    f"{', '.join(self.classes)}; add it to classes")
            counts[value] += 1
            data.append(dict(img_path=os.path.join(folder, frame['name']),
                             gt_label=self.classes.index(value)))
        print_log(f'Bdd100kSceneDataset({self.attribute}): '
                  + ', '.join(f'{c} {counts[c]}' for c in self.classes)
                  + (f'; {undefined} undefined left out' if undefined
                     else ''), logger='current')
        return data
