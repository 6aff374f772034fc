"""Reading configs for the runner: classic ``_base_`` Python configs only.

mmengine 0.10.7's ``pkg::path`` bases need ``pkg_resources`` (gone from
recent setuptools) and its lazy ``read_base()`` configs break on Python
3.11+, so both are refused up front with a message naming the file.
"""
from __future__ import annotations

import ast
import os
from typing import Sequence

from mmengine.config import Config, DictAction

from perception.errors import UserError


class ConfigError(UserError, ValueError):
    """A config cannot be used; the message names the file and the fix."""


def _check_bases(path: str, seen: set[str] | None = None) -> None:
    seen = set() if seen is None else seen
    path = os.path.abspath(path)
    if path in seen or not path.endswith('.py'):
        return
    seen.add(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config '{path}' not found")
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise ConfigError(f'{path}, line {exc.lineno}: syntax error in '
                          f'config: {exc.msg}') from None
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                'read_base' in ast.unparse(item.context_expr)
                for item in node.items):
            raise ConfigError(
                f'{path}, line {node.lineno}: lazy `with read_base():` '
                'configs are not supported (mmengine 0.10.7 breaks on '
                "Python 3.11+). Use a classic config: `_base_ = ['../_base_/"
                "...py']` with string `type=` names.")
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                raise ConfigError(f'{path}, line {node.lineno}: `_base_` '
                                  'must be a string or a list of '
                                  'strings') from None
            for base in [bases] if isinstance(bases, str) else bases:
                if '::' in base:
                    raise ConfigError(
                        f"{path}, line {node.lineno}: package base '{base}' "
                        'is not supported (mmengine 0.10.7 needs the removed '
                        'pkg_resources for `pkg::path` bases). Copy the base '
                        'into configs/ and use a relative path.')
                _check_bases(os.path.join(os.path.dirname(path), base), seen)


def parse_cfg_options(options: Sequence[str]) -> dict:
    """``['a.b=1', 'c=[1,2]']`` -> ``{'a.b': 1, 'c': [1, 2]}`` (mmengine's
    ``--cfg-options`` syntax)."""
    parsed = {}
    for option in options or []:
        key, sep, value = option.partition('=')
        if not sep or not key:
            raise ConfigError(f"--cfg-options: '{option}' is not KEY=VALUE "
                              '(e.g. train_cfg.max_epochs=2)')
        parsed[key] = DictAction._parse_iterable(value)
    return parsed


def load_config(path: str, cfg_options: Sequence[str] = ()) -> Config:
    """``Config.fromfile`` after checking the ``_base_`` chain, then merge
    ``cfg_options``; ``default_scope`` defaults to ``'perception'``."""
    _check_bases(path)
    try:
        cfg = Config.fromfile(path, lazy_import=False)
    except (TypeError, KeyError, NameError, AttributeError) as exc:
        # mmengine's own messages for configs that do not merge or run
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        raise ConfigError(f'{path}: {message}') from exc
    options = parse_cfg_options(cfg_options)
    if options:
        cfg.merge_from_dict(options)
    if cfg.get('default_scope') is None:
        cfg.default_scope = 'perception'
    return cfg
