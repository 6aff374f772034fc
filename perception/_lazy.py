"""Lazy package attributes (PEP 562), so that importing a plugin package is
cheap: ``perception --help`` lists every plugin's commands without importing
torch, and a plugin's classes are imported when first used or when plugin
discovery calls the package's ``register()``.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]],
                            list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package whose
    public names live in submodules.

    Args:
        package: the package's ``__name__``.
        exports: public name -> absolute module that defines it.

    Example:
        >>> __getattr__, __dir__, __all__ = lazy_exports(__name__, {
        ...     'read_dicom': 'perception_medical.dicom.reading'})
    """
    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f'module {package!r} has no attribute '
                                 f'{name!r}')
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)


def import_all(modules: tuple[str, ...] | list[str]) -> None:
    """Import each module (whose import registers its classes)."""
    for module in modules:
        importlib.import_module(module)
