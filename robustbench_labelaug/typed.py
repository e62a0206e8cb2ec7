"""Typed schemas (pydantic) and the one line a user sees when a value does not fit.

The evaluation config (:mod:`robustbench_labelaug.runner.config`) and the zoo entry (:mod:`.zoo.schema`) are
pydantic models; :func:`rule` turns a ``problem(value) -> message | None`` rule of :mod:`.results.rules` into a
validator (so a value gets the same message wherever it is checked), and :func:`one_line` turns pydantic's errors
into one sentence naming the key and the fix. Imports no torch."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, BeforeValidator, ValidationError

from .errors import UserError

_EXPECTED = {  # pydantic's error type -> what the value must be
    "bool_type": "true or false", "bool_parsing": "true or false",
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "string_type": "a string", "dict_type": "a mapping", "list_type": "a list", "tuple_type": "a list",
}


def rule(problem: Callable[[Any], str | None]) -> BeforeValidator:
    """A pydantic validator from a ``problem(value) -> message | None`` rule, run on the raw value."""
    def validate(value: Any) -> Any:
        message = problem(value)
        if message:
            raise ValueError(message)
        return value
    return BeforeValidator(validate)


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part != "[key]")


def _nullable(model: type[BaseModel] | None, name: str) -> bool:
    field = (model.model_fields if model is not None else {}).get(name)
    if field is None:
        return False
    hint = field.annotation
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def one_line(exc: ValidationError, allowed: Iterable[str] = (), model: type[BaseModel] | None = None,
             unknown: str = "unknown key(s) {keys}: use {allowed}", missing: str = "missing key(s) {keys}") -> str:
    """One sentence for a failed validation: the unknown keys (with the allowed ones), else the missing ones, else
    the first bad value (``'key' must be ..., got value``, or the rule's own message)."""
    errors = exc.errors(include_url=False)
    extra = sorted(_where(e["loc"]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if extra:
        return unknown.format(keys=extra, allowed=", ".join(allowed))
    absent = [_where(e["loc"]) for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if absent:
        return missing.format(keys=absent)
    error = errors[0]
    name = _where(error["loc"][:1]) if error["type"] in _EXPECTED else _where(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ValueError):
        return f"'{name}' {cause}"
    if error["type"] == "extra_forbidden":
        return f"'{_where(error['loc'][:-1])}' has an unknown key {error['loc'][-1]!r}: remove it"
    if error["type"] == "missing":
        return f"'{_where(error['loc'][:-1])}' needs '{error['loc'][-1]}'"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if error["type"] in bounds:
        limit = next(iter((error.get("ctx") or {}).values()), "?")
        return f"'{name}' must be {bounds[error['type']]} {limit}, got {error['input']!r}"
    expected = _EXPECTED.get(error["type"])
    if expected is not None:
        null = " or null" if _nullable(model, str(error["loc"][0])) else ""
        return f"'{name}' must be {expected}{null}, got {error['input']!r}"
    return f"'{name}': {error['msg'][:1].lower()}{error['msg'][1:]}"


def build(model: type[BaseModel], values: dict[str, Any], prefix: str, where: str,
          allowed: Iterable[str] | None = None) -> Any:
    """``model`` validated from ``values`` (the block ``where`` of a file), or one :class:`UserError` line:
    ``<prefix>: unknown key(s) [...] in <where>: use ...`` or ``<prefix>: <where>: 'key' must be ..., got ...``."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        keys = list(allowed) if allowed is not None else list(model.model_fields)
        line = one_line(exc, keys, model, unknown=f"unknown key(s) {{keys}} in {where}: use {{allowed}}")
        raise UserError(f"{prefix}: {line}" if line.startswith("unknown key(s)") else f"{prefix}: {where}: {line}"
                        ) from None


__all__ = ["build", "one_line", "rule"]
