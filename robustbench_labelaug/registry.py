"""One registry mechanism for datasets, evaluators, attacks and zoo model sources, like timm's ``register_model``.

A :class:`Registry` maps a name to an entry. An entry is registered once, with the decorator::

    EVALUATORS = Registry("evaluator", modules=("robustbench_labelaug.evaluation.clean", ...))

    @EVALUATORS.register("clean")
    class CleanEvaluator(Evaluator): ...

or lazily, without importing the module that holds it (``"module:attribute"``; imported on first :meth:`get`),
so a registry's names and metadata are readable without importing torch::

    EVALUATORS.register("clean", "robustbench_labelaug.evaluation.clean:CleanEvaluator")

``modules`` are imported on the first lookup (their decorators register the built-in entries). An unknown name is
a :class:`~robustbench_labelaug.errors.UserError` listing the known ones. This module imports nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")
_MISSING = object()


def resolve(ref: Any) -> Any:
    """``"package.module:attribute"`` imported and looked up; anything else returned as it is."""
    if isinstance(ref, str) and ":" in ref:
        module, _, attribute = ref.partition(":")
        target: Any = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part)
        return target
    return ref


class Registry(Generic[T]):
    """name -> entry, in registration order (see the module docstring)."""

    def __init__(self, kind: str, modules: tuple[str, ...] = (), hint: str = "") -> None:
        self.kind, self.modules, self.hint = kind, tuple(modules), hint
        self._entries: dict[str, Any] = {}
        self._loaded = False

    # -- registering ---------------------------------------------------------------------------------------------
    def register(self, name: str, entry: Any = None) -> Any:
        """``register(name, entry)`` registers ``entry`` (an object or a lazy ``"module:attribute"``);
        ``@register(name)`` registers what it decorates and returns it unchanged."""
        if entry is not None:
            self._add(name, entry)
            return entry

        def decorate(obj: T) -> T:
            self._add(name, obj)
            return obj

        return decorate

    def _add(self, name: str, entry: Any) -> None:
        held = self._entries.get(name)
        if held is not None and held is not entry and not self._same(held, entry):
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry

    @staticmethod
    def _same(held: Any, entry: Any) -> bool:
        """A lazy reference replaced by the object it names (its module registering it on import)."""
        for ref, obj in ((held, entry), (entry, held)):
            if isinstance(ref, str) and ":" in ref and not isinstance(obj, str):
                module, _, attribute = ref.partition(":")
                if getattr(obj, "__module__", None) == module and getattr(obj, "__qualname__", None) == attribute:
                    return True
        return False

    def unregister(self, name: str) -> None:
        """Drop ``name`` (tests that register a temporary entry)."""
        self._entries.pop(name, None)

    def __setitem__(self, name: str, entry: Any) -> None:
        """Set or replace ``name`` (``monkeypatch.setitem`` in tests; code registers with :meth:`register`)."""
        self.load()
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    # -- reading -------------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Import the built-in modules (once), so their decorators have registered their entries."""
        if not self._loaded:
            self._loaded = True
            for module in self.modules:
                importlib.import_module(module)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        self.load()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def check(self, name: str) -> str:
        """``name`` when registered, else a :class:`UserError` listing the known names."""
        if name not in self:
            hint = f" ({self.hint})" if self.hint else ""
            raise UserError(f"unknown {self.kind} '{name}': use one of {', '.join(self._entries)}{hint}")
        return name

    def raw(self, name: str) -> Any:
        """The entry as registered (a lazy reference stays a string)."""
        return self._entries[self.check(name)]

    def get(self, name: str, default: Any = _MISSING) -> T:
        """The entry of ``name``, a lazy reference imported (and remembered) on first use; ``default`` (when
        given) for an unknown name instead of the :class:`UserError`."""
        if default is not _MISSING and name not in self:
            return default
        entry = self.raw(name)
        if isinstance(entry, str) and ":" in entry:
            entry = resolve(entry)
            self._entries[name] = entry
        return entry

    __getitem__ = get

    def items(self) -> list[tuple[str, T]]:
        return [(name, self.get(name)) for name in self.names()]

    def map(self, fn: Callable[[T], Any]) -> dict[str, Any]:
        return {name: fn(entry) for name, entry in self.items()}


__all__ = ["Registry", "resolve"]
