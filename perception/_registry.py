"""Registry class with plugin discovery, helpful unknown-type errors and
duplicate-name errors that name both owners.

The public registries live in :mod:`perception.registry`; this module is the
infrastructure behind them (timm's underscore habit).
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

from mmengine.registry import Registry

from perception.errors import UserError
from perception.plugins import describe_loaded_plugins, load_plugins, owner_of_module


class UnknownTypeError(UserError, KeyError):
    """A config asked for a ``type`` that no registry knows."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ''


class DuplicateNameError(KeyError):
    """Two packages registered the same name in one registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def owner_of(obj: Any) -> str:
    """Name the plugin (or the core) that defines ``obj``."""
    return owner_of_module(getattr(obj, '__module__', '') or '')


def _all_names(registry: Registry) -> list[str]:
    names: list[str] = []
    node: Registry | None = registry
    while node is not None:
        names.extend(node.module_dict)
        node = node.parent
    return sorted(set(names))


def unknown_type_message(registry: Registry, name: str) -> str:
    """The message for an unknown ``type``: registry, close matches, plugins."""
    scope = registry.scope
    close = difflib.get_close_matches(name, _all_names(registry), n=5,
                                      cutoff=0.5)
    lines = [f"'{name}' is not in the {scope}::{registry.name} registry."]
    if close:
        lines.append('Did you mean: ' + ', '.join(close) + '?')
    lines.append('Plugins loaded: ' + describe_loaded_plugins() + '.')
    lines.append('Fix the `type` in your config, or install/import the '
                 'plugin that registers it (`perception plugins` lists '
                 'what each plugin registered).')
    return '\n'.join(lines)


class PerceptionRegistry(Registry):
    """mmengine ``Registry`` that discovers plugins before the first lookup,
    explains unknown names, and refuses a name registered by two packages."""

    def import_from_location(self) -> None:
        super().import_from_location()
        load_plugins()

    def build(self, cfg: dict, *args, **kwargs) -> Any:
        obj_type = cfg.get('type') if isinstance(cfg, dict) else None
        if isinstance(obj_type, str) and self.get(obj_type) is None:
            raise UnknownTypeError(unknown_type_message(self, obj_type))
        return super().build(cfg, *args, **kwargs)

    def get(self, key: str) -> Any:
        try:
            return super().get(key)
        except RuntimeError:  # mmengine's "Failed to get X" for dotted keys
            return None

    def _register_module(self, module, module_name=None, force=False):
        names: Iterable[str]
        if module_name is None:
            names = [module.__name__]
        elif isinstance(module_name, str):
            names = [module_name]
        else:
            names = module_name
        for name in names:
            existing = self._module_dict.get(name)
            if existing is not None and existing is not module and not force:
                raise DuplicateNameError(
                    f"'{name}' is registered twice in the {self.scope}::"
                    f'{self.name} registry: by {owner_of(existing)} '
                    f'({existing.__module__}) and by {owner_of(module)} '
                    f'({module.__module__}). Rename one of them, or '
                    'uninstall one of the two plugins.')
        if all(self._module_dict.get(n) is module for n in names):
            return  # re-import of the same module (e.g. importlib reload)
        super()._register_module(module, module_name, force=True)
