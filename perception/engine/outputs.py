"""What ``perception test --out`` writes besides metrics: every prediction
as JSON (pictures of predictions, ``--show-dir``, are drawn by
:mod:`perception.visualization.predictions`).

The JSON follows the run's privacy guard (:mod:`perception.engine.privacy`):
in a guarded run, strings holding private values (sample paths under a
private ``data_root``) are redacted. Unguarded runs keep readable names.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from perception.engine.privacy import current_redactor
from perception.registry import METRICS


def to_jsonable(value: Any) -> Any:
    """Tensors, arrays and data elements -> lists, numbers and dicts."""
    if hasattr(value, 'to_dict') and not isinstance(value, dict):
        value = value.to_dict()
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


@METRICS.register_module()
class DumpPredictionsJSON(BaseMetric):
    """Write every prediction (a data sample as a dict of lists) to a JSON
    file: pickle-free, so it can be read anywhere. In a guarded run every
    string is redacted (``img_path`` -> ``<redacted:...>``; ``series_uid``
    and ``slice_index`` still say which slice it was).

    Args:
        out_file: path of the JSON file.
    """

    def __init__(self, out_file: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_file = out_file

    def process(self, data_batch, data_samples: Sequence) -> None:
        # redacted here, before ranks exchange results through temp files
        redactor = current_redactor()
        records = (to_jsonable(s) for s in data_samples)
        self.results.extend(records if redactor is None else
                            (redactor.value(r) for r in records))

    def compute_metrics(self, results: list) -> dict:
        folder = os.path.dirname(os.path.abspath(self.out_file))
        os.makedirs(folder, exist_ok=True)
        with open(self.out_file, 'w', encoding='utf-8') as f:
            json.dump(results, f)
        print_log(f'wrote {len(results)} predictions to {self.out_file}',
                  logger='current')
        return {}
