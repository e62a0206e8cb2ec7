"""Every argument check of the package, in one place (value ranges and cross-field rules are defined in
:mod:`robustbench_labelaug.results.rules` and re-exported here): each raises
:class:`~robustbench_labelaug.errors.UserError` with one line naming the problem and the fix, and returns the value in its checked type.

``owner`` (an evaluator name, ``"config x.yaml: models[0]"``, ...) prefixes the message so the user can tell where
the bad value came from; every check takes ``(owner, value, ...)`` in that order. The training hook, the evaluators,
the config loader and ``rbla train`` all use these."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from .errors import UserError
from .results.rules import (  # noqa: F401  (the value rules, defined once there, under the names used here)
    check_alpha,
    check_delta,
    check_eps,
    check_mode,
    check_num_ops,
    check_probability,
    check_steps,
    check_training,
    is_int,
    is_number,
)

MIN_CORRUPTION_SIZE = 32  # imagecorruptions' smallest image side


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def check_seed(owner: str | None, seed: Any) -> int | None:
    """A seed >= 0, or None (the run's seed)."""
    if seed is not None and (not is_int(seed) or seed < 0):
        raise UserError(f"{_prefix(owner)}seed must be an integer >= 0 (or left out for the run's seed), "
                        f"got {seed!r}")
    return seed


def check_nonneg(owner: str | None, name: str, value: Any, unit: str = "percentage points") -> float:
    if not is_number(value) or value < 0:
        raise UserError(f"{_prefix(owner)}{name} must be a number >= 0 ({unit}), got {value!r}")
    return float(value)


def check_positive_int(owner: str | None, name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not is_int(value) or value < 1:
        raise UserError(f"{_prefix(owner)}{name} must be an integer >= 1{' (or left out)' if allow_none else ''}, "
                        f"got {value!r}")
    return int(value)


def check_choice(owner: str | None, name: str, value: Any, choices: Sequence[str], hint: str = "") -> str:
    if value not in choices:
        raise UserError(f"{_prefix(owner)}{name} '{value}' is not known: use one of {', '.join(choices)}"
                        + (f" ({hint})" if hint else ""))
    return value


def check_min_size(owner: str | None, min_size: Any) -> int:
    """The side images are upsampled to before corrupting (imagecorruptions needs >= 32)."""
    if not is_int(min_size) or min_size < MIN_CORRUPTION_SIZE:
        raise UserError(f"{_prefix(owner)}min_size={min_size!r} is below {MIN_CORRUPTION_SIZE}, the smallest image "
                        f"imagecorruptions accepts: use an integer min_size >= {MIN_CORRUPTION_SIZE}")
    return int(min_size)


MIN_INPUT_SIZE, MAX_INPUT_SIZE = 8, 4096  # pixels per side: below, no model sees an image; above, memory runs out


def check_input_size(owner: str | None, value: Any, what: str = "input_size") -> int | None:
    """An image side in pixels (None: the dataset's default) within [MIN_INPUT_SIZE, MAX_INPUT_SIZE]."""
    if value is None:
        return None
    if not is_int(value) or not MIN_INPUT_SIZE <= value <= MAX_INPUT_SIZE:
        raise UserError(f"{_prefix(owner)}{what} must be an integer from {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} "
                        f"(pixels per side), got {value!r}: e.g. 32 for CIFAR, 224 for ImageNet")
    return int(value)


# -- typed records (config sections, evaluator settings) --------------------------------------------------------


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path",
               type(None): "null", dict: "a mapping", list: "a list", tuple: "a list"}


def check_declared_classes(declared: Any, found: int, data: str, flag: str = "--num-classes") -> int:
    """K as the data has it: a declared class count (``--num-classes``, for ``rbla train`` and ``rbla timm-train``
    alike) must equal the classes ``data`` holds, so a head is never trained for classes that are not there."""
    if declared is not None and int(declared) != int(found):
        raise UserError(f"{flag} {declared} but {data} has {found} classes: pass {flag} {found} or leave it out "
                        "where the command allows, or fix the data folder (the head gets K+M outputs by itself)")
    return int(found)


def _type_name(hint: Any) -> str:
    """``int | None`` -> ``an integer or null``; ``list[float]`` -> ``a list (each a number)``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin in (list, tuple, Sequence):
        inner = typing.get_args(hint)
        return f"a list (each {_type_name(inner[0])})" if inner else "a list"
    if origin is dict:
        return "a mapping"
    return _TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))


def check_type(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against a type annotation (``int``, ``float``, ``bool``, ``str``, ``Path``, ``X | None``,
    ``list[X]``, ``Sequence[X]``, ``dict``, ``Any``); ints pass as floats. Returns the value (a float for a float
    annotation); :class:`UserError` naming ``where`` otherwise."""
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return check_type(value, arg, where)
            except UserError:
                pass
        raise UserError(f"{where} must be {_type_name(hint)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if is_int(value):
            return value
    elif hint is float:
        if is_number(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Path:
        if isinstance(value, (str, Path)):
            return value
    elif origin in (list, tuple, Sequence) or hint in (list, tuple):
        if isinstance(value, (list, tuple)):
            inner = typing.get_args(hint)
            if inner and inner[-1] is not Ellipsis:
                return [check_type(v, inner[0], f"{where}[{i}]") for i, v in enumerate(value)]
            return list(value)
    elif origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
    else:  # an annotation this checker does not know: trust the caller
        return value
    raise UserError(f"{where} must be {_type_name(hint)}, got {value!r}")


def check_fields(obj: Any, where: str) -> None:
    """Check (and coerce) every field of the dataclass instance ``obj`` against its annotation."""
    import dataclasses

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.name in hints:
            setattr(obj, f.name, check_type(getattr(obj, f.name), hints[f.name], f"{where}: '{f.name}'"))


__all__ = ["MIN_CORRUPTION_SIZE", "check_alpha", "check_choice", "check_declared_classes", "check_delta", "check_eps",
           "check_fields", "check_min_size", "check_mode", "check_nonneg", "check_num_ops", "check_positive_int",
           "check_probability", "check_seed", "check_steps", "check_training", "check_type", "is_int", "is_number"]
