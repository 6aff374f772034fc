"""Which metric gates an FP16 / INT8 export: the config's evaluator of the
gate's split (``test_evaluator`` for the test split, else
``val_evaluator``), built through the registry, so the core never names a
plugin's metric.

The first evaluator entry whose metric declares a ``precision_gate``
(:func:`perception.deploy.gate.gate_spec`; COCO AP for ``CocoMetric``, a
plugin's metric declares its own, e.g. FROC sensitivity at 2 FPs per scan
for lesion detectors) is the gate. A config may set ``precision_gate =
dict(type=..., key=..., max_drop=...)`` to pick another entry (``type``),
another figure of it (``key``) or other default drops.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

__all__ = ['gate_metric']


def _entries(evaluator: Any) -> list[dict]:
    if evaluator is None:
        return []
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']
    if isinstance(evaluator, dict):
        evaluator = [evaluator]
    return [dict(e) for e in evaluator]


def gate_metric(config: str, split: str, class_names: Sequence[str],
                dataset_meta: dict | None = None,
                cfg_options: Sequence[str] = ()
                ) -> tuple[Callable[[], Any], dict, str]:
    """``(make_metric, spec, prefix)``: a factory of fresh metrics of the
    config's gate evaluator (``dataset_meta`` set, the bundle's
    ``class_names`` as ``classes``), its gate spec and its prefix.

    Raises:
        PrecisionError: no evaluator entry declares a gate, or the
            config's ``precision_gate`` names an evaluator it lacks.
    """
    from mmengine.registry import DefaultScope

    from perception.deploy.errors import PrecisionError
    from perception.deploy.gate import gate_spec
    from perception.engine.config import load_config
    from perception.registry import METRICS
    cfg = load_config(config, cfg_options)
    key = 'test_evaluator' if split == 'test' else 'val_evaluator'
    entries = _entries(cfg.get(key)) or _entries(cfg.get('val_evaluator'))
    override = dict(cfg.get('precision_gate') or {})
    wanted = override.pop('type', None) or override.pop('metric', None)
    chosen = None
    for entry in entries:
        cls = METRICS.get(entry.get('type'))
        if cls is None:
            raise PrecisionError(f"{config}: {key} type {entry.get('type')!r}"
                                 ' is not a registered metric (is its plugin '
                                 'installed?)')
        if wanted is not None and entry.get('type') != wanted:
            continue
        spec = gate_spec(cls, override)
        if spec is not None:
            chosen = (entry, cls, spec)
            break
    if chosen is None:
        names = [e.get('type') for e in entries] or ['none']
        raise PrecisionError(
            f'{config}: no {key} metric to gate the precision on '
            f"({', '.join(map(str, names))}"
            + (f'; precision_gate.type {wanted!r} is not among them'
               if wanted else ': none declares a precision_gate')
            + '); set precision_gate = dict(type=..., key=...) in the config '
            'or evaluate with CocoMetric')
    entry, cls, spec = chosen
    built = dict(entry, **spec.get('build') or {})
    scope = cfg.get('default_scope', 'perception')

    def make_metric() -> Any:
        with DefaultScope.overwrite_default_scope(scope):
            metric = METRICS.build(dict(built))
        metric.dataset_meta = dict(dataset_meta or {},
                                   classes=tuple(class_names))
        return metric

    prefix = entry.get('prefix') or getattr(cls, 'default_prefix', None) \
        or cls.__name__
    return make_metric, spec, str(prefix)
