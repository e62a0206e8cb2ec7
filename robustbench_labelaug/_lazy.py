"""Lazy package exports: ``__getattr__ = lazy_exports(__name__, {"name": ".module", ...})`` imports a name's
module on first use (PEP 562), so importing a package costs nothing until something heavy (torch, timm) is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving each of ``names`` (name -> relative module) by importing its module."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name], package), name)
        import sys

        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    return __getattr__


def after_import(module: str, callback: Callable[[], None]) -> None:
    """``callback()`` now if ``module`` is imported already, else right after its first import (a finder on
    ``sys.meta_path`` that wraps the module's ``exec_module``). Installing the same callback twice is harmless."""
    import importlib.abc
    import importlib.machinery
    import sys

    if module in sys.modules:
        callback()
        return

    class _AfterImport(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path=None, target=None):
            if fullname != module:
                return None
            sys.meta_path.remove(self)  # once
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            exec_module = spec.loader.exec_module

            def exec_then_call(mod) -> None:
                exec_module(mod)
                callback()

            spec.loader.exec_module = exec_then_call
            return spec

        key = (module, callback)

    if not any(getattr(f, "key", None) == (module, callback) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
