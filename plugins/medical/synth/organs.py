"""Exact organ masks of the synthetic chest (``perception synth-ct
--organ-masks``): lungs, liver, heart and the rest of the body, from the
phantom's own surfaces, so they are the ground truth of the pictures
themselves (no thresholding, no model).

A voxel gets an organ when its centre lies inside the organ's surface
(signed distance < 0). Where surfaces overlap, the structure the phantom
paints last wins, as in the image: body outline, liver, spine, lungs,
heart, then aorta, trachea, ribs and sternum (so a rib or the aorta is body,
never liver or lung; the lungs' own vessels stay lung). The labels are
exclusive, so one label volume holds them all: 0 background (air, the
table), 1 body (every other tissue inside the body outline: fat, muscle,
bone, the great vessels, the trachea), 2 lungs, 3 liver, 4 heart.

Per series, :func:`write_organ_masks` writes below ``OUT/organs/`` (beside
``dicom/``, never inside it, so the series folders hold the images alone):

* ``<patient>/<series>/organs_seg.dcm``: a DICOM SEG (highdicom, BINARY,
  one segment per organ) referencing every source instance;
* ``<patient>/<series>/organs.npz``: ``labels`` uint8 (z, y, x) in the
  series' slice order (ascending along the slice normal, as ``load_series``
  stacks them), ``classes`` (the names above), ``series_uid`` and
  ``affine`` (index (z, y, x, 1) -> LPS mm). No patient data;
* ``organs.json``: series UID -> ``{seg, labels, classes}`` (paths
  relative to ``OUT``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from perception_medical.synth.phantom import ChestPhantom

#: label value -> name of the organ masks (0 is background)
ORGAN_CLASSES = ('background', 'body', 'lungs', 'liver', 'heart')
ORGANS_DIR = 'organs'
SEG_FILE = 'organs_seg.dcm'
LABELS_FILE = 'organs.npz'
#: ``OUT/organs/organs.json``: series UID -> its entry (seg, labels, classes)
ORGANS_INDEX = 'organs.json'


def organ_labels(phantom: ChestPhantom, origin: np.ndarray, axes: np.ndarray,
                 size: int, step: float) -> np.ndarray:
    """(size, size) uint8 organ labels (:data:`ORGAN_CLASSES`) of the slice
    whose pixel (row j, column i) centre is ``origin + i*step*axes[0] +
    j*step*axes[1]`` (the grid of :meth:`ChestPhantom.sample_slice`)."""
    grid = np.arange(size, dtype=np.float32) * step
    axes = np.asarray(axes, np.float32)
    p = (np.asarray(origin, np.float32) + grid[None, :, None] * axes[0]
         + grid[:, None, None] * axes[1]).reshape(-1, 3)
    labels = np.zeros(len(p), np.uint8)
    for name, distance in phantom.organ_distances(p):  # paint order
        labels[distance < 0] = ORGAN_CLASSES.index(name)
    return labels.reshape(size, size)


def organ_volume(phantom: ChestPhantom, positions: Sequence[np.ndarray],
                 axes: np.ndarray, size: int, step: float) -> np.ndarray:
    """(z, size, size) uint8 labels of the slices at ``positions``."""
    return np.stack([organ_labels(phantom, pos, axes, size, step)
                     for pos in positions])


def write_organ_masks(root: Path, series_folder: str, labels: np.ndarray,
                      sources: Sequence, series_uid: str,
                      affine: np.ndarray) -> dict:
    """Write one series' masks (see the module docstring).

    Args:
        root: the study folder.
        series_folder: the series' folder relative to ``root/dicom``
            (``patient_00/series_0``): the masks' folder below
            ``root/organs``.
        labels: (z, y, x) uint8, slice k on ``sources[k]``.
        sources: the series' headers (pydicom Datasets) in slice order.
        series_uid: the source series.
        affine: the series' 4x4 index -> LPS affine.

    Returns:
        the manifest entry: ``seg`` and ``labels`` (paths relative to
        ``root``) and ``classes``.
    """
    from perception_medical.dicom.seg_write import write_seg
    folder = root / ORGANS_DIR / series_folder
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / LABELS_FILE, labels=labels.astype(np.uint8),
                        classes=np.array(ORGAN_CLASSES),
                        series_uid=np.array(series_uid),
                        affine=np.asarray(affine, np.float64))
    write_seg(folder / SEG_FILE, labels, ORGAN_CLASSES, sources,
              description='synthetic organ masks',
              algorithm='perception synth-ct phantom geometry',
              uid_seed=[series_uid, 'organs'])
    return dict(seg=os.fspath((folder / SEG_FILE).relative_to(root)),
                labels=os.fspath((folder / LABELS_FILE).relative_to(root)),
                classes=list(ORGAN_CLASSES))


def read_organ_labels(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """``labels`` (z, y, x) uint8 and ``classes`` of an ``organs.npz``."""
    with np.load(path, allow_pickle=False) as data:
        return data['labels'], [str(c) for c in data['classes']]
