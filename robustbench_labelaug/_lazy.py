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

