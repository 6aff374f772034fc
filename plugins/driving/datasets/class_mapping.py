"""Map every source class of a dataset format to the unified taxonomy.

A class map is a YAML file::

    source: KITTI object benchmark
    classes: [pedestrian, rider, ...]   # optional, default DRIVING_CLASSES
    map:
      Car: car            # a class of ``classes``
      DontCare: ignore    # an ignore region for every class (label -1)
      Misc: drop          # not used at all

Nothing is dropped silently: a source class missing from ``map`` is an
:class:`UnmappedClassError` naming the class, the file it came from and the
map to edit, and :class:`ClassCounter` prints what went where at load.
Built-in maps live in ``class_maps/`` (``kitti``, ``bdd100k``,
``nuscenes``, ``nuimages``, ``coco``).
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Mapping, Sequence

import yaml

from perception.errors import UserError
from perception.structures import DRIVING_CLASSES

#: Label of a class-agnostic ignore region (KITTI DontCare and the like).
IGNORE_LABEL = -1
IGNORE, DROP = 'ignore', 'drop'
_MAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'class_maps')


class UnmappedClassError(UserError, ValueError):
    """A source class has no entry in the class map."""


def builtin_class_maps() -> list[str]:
    """Names of the class maps shipped with the plugin."""
    return sorted(f[:-5] for f in os.listdir(_MAP_DIR) if f.endswith('.yaml'))


class ClassMap:
    """Source class name -> label index, ignore region or drop.

    Args:
        mapping: source name -> a name of ``classes``, ``'ignore'`` or
            ``'drop'``.
        classes: target taxonomy (label = index).
        name: where the map came from, used in messages.
    """

    def __init__(self, mapping: Mapping[str, str],
                 classes: Sequence[str] = DRIVING_CLASSES,
                 name: str = '<dict>') -> None:
        self.classes = tuple(classes)
        self.name = name
        self.mapping = {}
        for src, dst in mapping.items():
            dst = str(dst)
            if dst not in self.classes and dst not in (IGNORE, DROP):
                raise ValueError(
                    f"class map {name}: '{src}' maps to unknown target "
                    f"'{dst}'; targets are {', '.join(self.classes)}, "
                    f"'{IGNORE}' or '{DROP}'")
            self.mapping[str(src)] = dst

    def target(self, source: str, where: str) -> str:
        """The target name of ``source`` (raises if unmapped).

        Args:
            source: class name as written in the dataset.
            where: file (and line) it was read from, for the message.
        """
        try:
            return self.mapping[source]
        except KeyError:
            raise UnmappedClassError(
                f"{where}: class '{source}' is not in the class map "
                f"{self.name}. Add a line '{source}: <class>|ignore|drop' "
                f"under `map:` (classes: {', '.join(self.classes)}), or "
                'pass class_map=<your yaml> to the dataset.') from None

    def label(self, source: str, where: str) -> int | None:
        """Label index, :data:`IGNORE_LABEL` for ignore, None for drop."""
        dst = self.target(source, where)
        if dst == DROP:
            return None
        if dst == IGNORE:
            return IGNORE_LABEL
        return self.classes.index(dst)

    def __repr__(self) -> str:
        return f'ClassMap({self.name}, {len(self.mapping)} source classes)'


def load_class_map(spec: str | Mapping | ClassMap | None,
                   default: str | None = None) -> ClassMap | None:
    """Build a :class:`ClassMap` from a built-in name, a YAML path or a dict.

    Args:
        spec: ``'kitti'`` etc. (built-in), a path to a YAML file, a dict in
            the YAML's shape (``{'map': {...}, 'classes': [...]}``) or a
            plain ``{source: target}`` dict; None uses ``default``.
        default: built-in name used when ``spec`` is None; if both are None
            the result is None (the caller keeps the source classes).
    """
    if isinstance(spec, ClassMap):
        return spec
    spec = default if spec is None else spec
    if spec is None:
        return None
    name = '<dict>'
    if isinstance(spec, str):
        path = spec
        if not os.path.exists(path) and os.sep not in spec:
            path = os.path.join(_MAP_DIR, f'{spec}.yaml')
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"class map '{spec}' is neither a file nor a built-in map "
                f"({', '.join(builtin_class_maps())})")
        with open(path, encoding='utf-8') as f:
            try:
                spec = yaml.safe_load(f)
            except yaml.YAMLError as exc:
                raise ValueError(f'{path}: not valid YAML ({exc})') from None
        name = path
    if not isinstance(spec, Mapping):
        raise ValueError(f'class map {name}: expected a mapping with a '
                         f'`map:` entry, got {type(spec).__name__}')
    if 'map' in spec:
        mapping = spec['map']
        classes = spec.get('classes') or DRIVING_CLASSES
        if not isinstance(mapping, Mapping):
            raise ValueError(f'class map {name}: `map` must map source '
                             'names to targets')
    else:
        mapping, classes = spec, DRIVING_CLASSES
    return ClassMap(mapping, classes, name)


class ClassCounter:
    """Counts boxes per source class and what they became; prints a table.

    Rows: source class, target, kept (positives), ignored (ignore regions,
    by the map or by a filter), dropped.
    """

    def __init__(self) -> None:
        self.targets: dict[str, str] = {}
        self.counts: Counter = Counter()

    def add(self, source: str, target: str, outcome: str) -> None:
        """Record one box; ``outcome`` in kept / ignored / dropped."""
        self.targets[source] = target
        self.counts[source, outcome] += 1

    def table(self, title: str = '') -> str:
        """The per-class table as text."""
        rows = [('source class', 'target', 'kept', 'ignored', 'dropped')]
        for src in sorted(self.targets):
            rows.append((src, self.targets[src],
                         *(str(self.counts[src, k])
                           for k in ('kept', 'ignored', 'dropped'))))
        totals = [sum(self.counts[s, k] for s in self.targets)
                  for k in ('kept', 'ignored', 'dropped')]
        rows.append(('total', '', *map(str, totals)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [title] if title else []
        for i, row in enumerate(rows):
            lines.append('  '.join(c.ljust(w) if j < 2 else c.rjust(w)
                                   for j, (c, w) in enumerate(zip(row,
                                                                 widths))))
            if i == 0 or i == len(rows) - 2:
                lines.append('  '.join('-' * w for w in widths))
        return '\n'.join(lines)
