"""Lazy package exports: ``__getattr__ = lazy_exports(__name__, {"name": ".module", ...})`` imports a name's
module on first use (PEP 562), so importing a package costs nothing until something heavy (torch, timm) is used;
its subpackages load on first attribute access too (``robustbench_labelaug.zoo.list_entries()``)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving each of ``names`` (name -> relative module) by importing its module."""

    def __getattr__(name: str) -> Any:
        if name not in names:  # a subpackage, as an eagerly importing package would have it (pkg.zoo.get_entry)
            if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return importlib.import_module(f"{package}.{name}")
        value = getattr(importlib.import_module(names[name], package), name)
        import sys

        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    return __getattr__

