"""Shared part of the driving detection readers: class mapping, box checks,
filters, the bad-sample policy and the per-class table printed at load.

A reader lists its samples (:meth:`DrivingDetDataset.sample_keys`) and
parses one (:meth:`DrivingDetDataset.parse_sample`) into a dict with
``img_path``, ``height``/``width`` (or None), meta keys and ``instances``:
dicts with ``bbox`` (pixel-edge xyxy), ``source`` (class name as written),
``where`` (file and line or record) and optional ``truncated``,
``occluded``, ``visibility`` numbers (``occluded`` and ``truncated`` are
kept per box as ``gt_occluded`` / ``gt_truncated``, NaN where unknown, and
packed into ``gt_instances``) and ``area``: the object's COCO area (a COCO
file's ``area``; default w * h of the box as the label file writes it, in
float64), kept as ``gt_areas`` for COCO's size bins. A sample the reader cannot use raises
:class:`~perception.data.BadSampleError`; ``on_bad_sample='skip'`` counts
and skips it (``bad_samples``), ``'error'`` stops. An unmapped class is
always an error.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Sequence

import numpy as np
from mmengine.logging import print_log

from perception.data import BadSampleError, PerceptionDataset
from perception.data.boxes import box_problem, clip_boxes
from perception.data.image_io import ImageReadError
from perception.data.image_io import image_size as read_image_size

from .box_filters import BoxFilter
from .class_mapping import IGNORE_LABEL, ClassCounter, load_class_map


def load_json(path: str):
    """Parse a JSON file; a syntax error names the file, line and column."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{path}: not valid JSON at line {exc.lineno} '
                         f'column {exc.colno}: {exc.msg}') from None


def numbers(value: Any, count: int, where: str, field: str,
            positive: bool = False) -> list[float]:
    """``value`` as ``count`` finite numbers; anything else (a string, a
    bool, NaN, a wrong length, a non-positive size when ``positive``) is a
    :class:`BadSampleError` naming ``where`` and ``field``."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise BadSampleError(f'{where}: {field} must be {count} numbers, got '
                             f'{value!r}')
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise BadSampleError(f'{where}: {field} must be numbers, got '
                                 f'{value!r} ({type(v).__name__} {v!r})')
        if not math.isfinite(v):
            raise BadSampleError(f'{where}: {field} holds a non-finite '
                                 f'value: {value!r}')
        if positive and v <= 0:
            raise BadSampleError(f'{where}: {field} must be positive sizes, '
                                 f'got {value!r}')
        out.append(float(v))
    return out


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image file, reading only its header
    (:func:`perception.data.image_io.image_size`); errors as
    :class:`BadSampleError` naming the file."""
    try:
        return read_image_size(path)
    except ImageReadError as exc:
        raise BadSampleError(f'{exc}; restore the file or remove its '
                             'labels') from exc


class DrivingDetDataset(PerceptionDataset):
    """Base of the driving detection readers (not registered itself).

    Args:
        data_root: dataset folder; relative paths are under it.
        class_map: built-in map name, YAML path or dict
            (:func:`~.class_mapping.load_class_map`);
            default the format's built-in map.
        filters: :class:`~.box_filters.BoxFilter` config;
            filtered boxes become ignore regions.
        box_tolerance: pixels a box may stick out of the image (it is then
            clipped); further out is a bad sample.
        pipeline: transforms.
        on_bad_sample: 'error' or 'skip'.
    """

    default_class_map: str | None = None
    format_name = 'driving'

    def __init__(self, data_root: str = '', class_map=None,
                 filters: dict | None = None, box_tolerance: float = 2.0,
                 pipeline: Sequence = (), **kwargs) -> None:
        self.class_map = load_class_map(class_map, self.default_class_map)
        self.box_filter = BoxFilter.build(filters)
        self.box_tolerance = float(box_tolerance)
        self.class_counts = ClassCounter()
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        if self.class_map is not None:
            metainfo.setdefault('classes', self.class_map.classes)
        super().__init__(data_root=data_root, pipeline=list(pipeline),
                         metainfo=metainfo, **kwargs)

    # -- to implement -------------------------------------------------------
    def sample_keys(self) -> list[Any]:
        """Everything :meth:`parse_sample` needs to find one sample."""
        raise NotImplementedError

    def parse_sample(self, key: Any) -> dict:
        """One sample as described in the module docstring."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------
    def path(self, name: str) -> str:
        """``name`` under ``data_root`` unless absolute."""
        if os.path.isabs(name) or not self.data_root:
            return name
        return os.path.join(self.data_root, name)

    def source_label(self, source: str, where: str) -> int | None:
        """Label of a source class (identity when there is no class map)."""
        return self.class_map.label(source, where)

    def load_data_list(self) -> list[dict]:
        self.class_counts = ClassCounter()
        data = []
        for key in self.sample_keys():
            try:
                info = self.parse_sample(key)
                data.append(self._finish(info))
            except BadSampleError as exc:
                self.skip_bad(exc)  # raises under on_bad_sample='error'
        print_log(self.class_counts.table(
            f'{type(self).__name__}: {len(data)} images from '
            f'{self.data_root or "."} ({len(self.bad_samples)} skipped), '
            f'boxes per class:'), logger='current')
        return data

    def _finish(self, info: dict) -> dict:
        """Check, map, filter and pack the instances of one sample."""
        shape = None
        if info.get('height') and info.get('width'):
            shape = (int(info['height']), int(info['width']))
        boxes, labels, ignore, outcomes = [], [], [], []
        occluded, truncated, areas = [], [], []
        for inst in info.pop('instances'):
            problem = box_problem(inst['bbox'], shape, self.box_tolerance)
            if problem:
                raise BadSampleError(
                    f"{inst['where']}: {problem}; fix or delete the label")
            label = self.source_label(inst['source'], inst['where'])
            target = (self.class_map.target(inst['source'], inst['where'])
                      if self.class_map is not None else inst['source'])
            if label is None:
                outcomes.append((inst['source'], target, 'dropped'))
                continue
            flag = bool(inst.get('ignore', False)) or label == IGNORE_LABEL
            if not flag:
                flag = self.box_filter.reason(
                    inst['bbox'], inst.get('truncated', math.nan),
                    inst.get('occluded', math.nan),
                    inst.get('visibility', math.nan)) is not None
            boxes.append(inst['bbox'])
            labels.append(label)
            ignore.append(flag)
            occluded.append(inst.get('occluded', math.nan))
            truncated.append(inst.get('truncated', math.nan))
            x1, y1, x2, y2 = (float(v) for v in inst['bbox'])
            areas.append(float(inst.get('area', (x2 - x1) * (y2 - y1))))
            outcomes.append((inst['source'], target,
                             'ignored' if flag else 'kept'))
        # counted only once the whole sample is good, so skipped samples
        # do not appear in the table
        for source, target, outcome in outcomes:
            self.class_counts.add(source, target, outcome)
        bboxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if shape is not None:
            bboxes = clip_boxes(bboxes, shape)
        info['gt_bboxes'] = bboxes
        info['gt_labels'] = np.asarray(labels, np.int64)
        info['gt_ignore_flags'] = np.asarray(ignore, bool)
        # per box, for metrics that rank difficulty (KittiMetric); NaN where
        # the format has no such attribute
        info['gt_occluded'] = np.asarray(occluded, np.float32)
        info['gt_truncated'] = np.asarray(truncated, np.float32)
        info['gt_areas'] = np.asarray(areas, np.float64)
        if shape is not None:
            info['ori_shape'] = shape
        return info
