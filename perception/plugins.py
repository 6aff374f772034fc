"""Plugin discovery through the ``perception.plugins`` entry-point group.

A plugin is an importable package declared by any installed distribution as
``perception.plugins = name = package``. Discovery imports it and calls its
``register()`` where it has one (a package that registers its classes when
imported needs none). Discovery runs once per process, on the first registry
lookup that needs it (or an explicit :func:`load_plugins`).

A plugin whose package is cheap to import (lazy public names, see
:func:`perception._lazy.lazy_exports`) may list ``COMMAND_MODULES``: modules
that register its subcommands in ``COMMANDS`` and import no torch.
:func:`load_commands` imports just those, so ``perception --help`` lists
every plugin's commands without loading any plugin's classes.

Environment:
    PERCEPTION_DISABLE_PLUGIN_AUTOLOAD=1: discover nothing automatically.
    PERCEPTION_STRICT_PLUGINS=1: a plugin that fails to import is fatal.
"""
from __future__ import annotations

import importlib
import os
import re
import threading
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # annotations only: registries import this module
    from mmengine.registry import Registry

ENTRY_POINT_GROUP = 'perception.plugins'
DISABLE_ENV = 'PERCEPTION_DISABLE_PLUGIN_AUTOLOAD'
STRICT_ENV = 'PERCEPTION_STRICT_PLUGINS'


class PluginLoadError(ImportError):
    """A plugin failed to import while ``PERCEPTION_STRICT_PLUGINS=1``."""


@dataclass
class PluginInfo:
    """What discovery learnt about one plugin."""

    name: str
    package: str
    distribution: str
    version: str
    loaded: bool = False
    error: str | None = None
    hint: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.loaded:
            return 'loaded'
        return 'disabled' if self.hint else 'failed'


_PLUGINS: dict[str, PluginInfo] = {}
_LOADED = False
_LOCK = threading.RLock()


def _env_on(name: str) -> bool:
    return os.environ.get(name, '').strip().lower() in ('1', 'true', 'yes',
                                                         'on')


def _missing_extra_hint(dist: metadata.Distribution | None,
                        missing: str) -> str | None:
    """The pip command that installs the extra providing ``missing``."""
    if dist is None:
        return None
    wanted = missing.split('.')[0].replace('_', '-').lower()
    for requirement in dist.requires or []:
        match = re.match(r'([A-Za-z0-9_.\-]+).*extra\s*==\s*"([^"]+)"',
                         requirement)
        if not match:
            continue
        req_name = match[1].replace('_', '-').lower()
        if req_name == wanted or req_name.startswith(wanted):
            return f"pip install '{dist.metadata['Name']}[{match[2]}]'"
    return f'pip install {wanted}'


def _import_plugin(info: PluginInfo, entry_point: metadata.EntryPoint,
                   strict: bool) -> None:
    try:
        import_plugin_module(entry_point.value.split(':')[0])
        info.loaded = True
    except Exception as exc:  # a broken plugin is named, not fatal
        info.error = f'{type(exc).__name__}: {exc}'
        missing = getattr(exc, 'name', None)
        if (isinstance(exc, ModuleNotFoundError) and missing
                and not missing.startswith(info.package)):
            info.hint = _missing_extra_hint(entry_point.dist, missing)
        if strict:
            raise PluginLoadError(
                f"plugin '{info.name}' ({info.package}, distribution "
                f'{info.distribution}) failed to import: {info.error}\n'
                + ''.join(traceback.format_exception(exc))) from exc


def load_plugins(force: bool = False) -> dict[str, PluginInfo]:
    """Discover and import every plugin once per process.

    Args:
        force: import again even if discovery already ran or is disabled by
            ``PERCEPTION_DISABLE_PLUGIN_AUTOLOAD``.

    Returns:
        Plugin name -> :class:`PluginInfo`, including failed plugins.
    """
    global _LOADED
    with _LOCK:
        if _LOADED and not force:
            return _PLUGINS
        _LOADED = True
        if _env_on(DISABLE_ENV) and not force:
            return _PLUGINS
        strict = _env_on(STRICT_ENV)
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in _PLUGINS and _PLUGINS[
                    entry_point.name].loaded:
                continue
            dist = entry_point.dist
            info = PluginInfo(
                name=entry_point.name,
                package=entry_point.value.split(':')[0],
                distribution=dist.metadata['Name'] if dist else '?',
                version=dist.version if dist else '?')
            _PLUGINS[entry_point.name] = info
            _import_plugin(info, entry_point, strict)
        return _PLUGINS


def load_commands() -> list[str]:
    """Import every plugin's ``COMMAND_MODULES`` (registering its
    subcommands) without loading its classes; a plugin that declares none is
    loaded in full.

    Returns:
        Names of plugins whose commands could not be loaded (the reason is
        reported by :func:`load_plugins` / ``perception plugins``).
    """
    failed: list[str] = []
    if _env_on(DISABLE_ENV):
        return failed
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            package = entry_point.load()
            modules = getattr(package, 'COMMAND_MODULES', None)
            if modules is None:
                load_plugins()
                continue
            for module in modules:
                importlib.import_module(module)
        except Exception:  # named by `perception plugins` with the reason
            failed.append(entry_point.name)
    return failed


def plugin_infos(registries: Sequence[Registry]) -> list[PluginInfo]:
    """Every discovered plugin with what it registered in ``registries``
    (e.g. ``perception.registry.ALL_REGISTRIES``), by registry name."""
    load_plugins()
    for info in _PLUGINS.values():
        info.registered = {}
    for registry in registries:
        registry.import_from_location()
        for name, obj in registry.module_dict.items():
            owner = _plugin_for_module(getattr(obj, '__module__', '') or '')
            if owner is not None:
                owner.registered.setdefault(registry.name, []).append(name)
    return list(_PLUGINS.values())


def _plugin_for_module(module: str) -> PluginInfo | None:
    top = module.split('.')[0]
    for info in _PLUGINS.values():
        if info.package.split('.')[0] == top:
            return info
    return None


def owner_of_module(module: str) -> str:
    """'plugin NAME (distribution DIST)', 'the core' or the module's package."""
    top = module.split('.')[0]
    if top == 'perception':
        return 'the perception core'
    info = _plugin_for_module(module)
    if info is not None:
        return f"plugin '{info.name}' (distribution {info.distribution})"
    return f"package '{top}'"


def describe_loaded_plugins() -> str:
    """One line naming loaded and failed plugins, for error messages."""
    if not _PLUGINS:
        if _env_on(DISABLE_ENV):
            return f'none (autoload disabled by {DISABLE_ENV})'
        return 'none'
    parts = []
    for info in _PLUGINS.values():
        parts.append(info.name if info.loaded else
                     f'{info.name} [{info.status}: {info.error}]')
    return ', '.join(parts)


def import_plugin_module(package: str) -> None:
    """Import a plugin package by hand and register its classes (e.g. with
    autoload disabled): imports it and calls its ``register()``."""
    module = importlib.import_module(package)
    register = getattr(module, 'register', None)
    if callable(register):
        register()


def _reset_for_tests() -> None:
    """Forget discovery so a test can run it again."""
    global _LOADED
    with _LOCK:
        _PLUGINS.clear()
        _LOADED = False
