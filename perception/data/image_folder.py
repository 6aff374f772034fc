"""``ImageFolderDataset``: images from a folder, unlabeled (pretraining) or
labelled by first-level subfolder name (``with_label=True``)."""
from __future__ import annotations

import os
from typing import Sequence

from perception.data.base_dataset import PerceptionDataset
from perception.registry import DATASETS
from perception.sources import IMAGE_SUFFIXES


@DATASETS.register_module()
class ImageFolderDataset(PerceptionDataset):
    """Images of any channel count found under ``data_root``.

    Args:
        data_root: folder to scan (recursively).
        with_label: label each image by its first-level subfolder name
            (``data_root/<class>/.../img.png``); classes sorted by name unless
            ``classes`` is given.
        classes: explicit class names (order = label index).
        extensions: file suffixes to accept.
        pipeline: transforms (configs or callables).
    """

    def __init__(self, data_root: str, pipeline: Sequence = (),
                 with_label: bool = False,
                 classes: Sequence[str] | None = None,
                 extensions: Sequence[str] = IMAGE_SUFFIXES,
                 **kwargs) -> None:
        self.with_label = with_label
        self.extensions = tuple(e.lower() for e in extensions)
        metainfo = kwargs.pop('metainfo', None) or {}
        if classes is not None:
            metainfo = dict(metainfo, classes=tuple(classes))
        super().__init__(data_root=data_root, pipeline=list(pipeline),
                         metainfo=metainfo, **kwargs)

    def _images_under(self, folder: str) -> list[str]:
        found = []
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in sorted(files)
                         if f.lower().endswith(self.extensions))
        return found

    def load_data_list(self) -> list[dict]:
        root = self.data_root
        if not root or not os.path.isdir(root):
            raise FileNotFoundError(
                f"ImageFolderDataset: data_root '{root}' is not a folder. "
                'Set data_root in the config (or --cfg-options '
                'train_dataloader.dataset.data_root=...); `perception '
                "synth-images OUT` writes a small labelled set to try.")
        if not self.with_label:
            data = [dict(img_path=p) for p in self._images_under(root)]
        else:
            classes = self._metainfo.get('classes') or tuple(sorted(
                d for d in os.listdir(root)
                if os.path.isdir(os.path.join(root, d))))
            self._metainfo['classes'] = tuple(classes)
            data = []
            for label, name in enumerate(classes):
                folder = os.path.join(root, name)
                if not os.path.isdir(folder):
                    raise FileNotFoundError(
                        f"ImageFolderDataset: class '{name}' has no folder "
                        f"'{folder}'; classes are first-level subfolders")
                data.extend(dict(img_path=p, gt_label=label)
                            for p in self._images_under(folder))
        if not data:
            raise FileNotFoundError(
                f"ImageFolderDataset: no images ({', '.join(self.extensions)})"
                f" under '{root}'")
        return data
