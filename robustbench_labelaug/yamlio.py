"""The one YAML loader every config and zoo reader uses (``rbla evaluate -c``, ``rbla train -c``, zoo entries).

On top of ``yaml.safe_load`` it refuses, each with one :class:`UserError` line:

- a key given twice in one mapping, at any level (YAML's "last one wins" silently drops the first value), naming
  both lines;
- a document whose aliases (``*name``) expand to more than :data:`MAX_VALUES` values (a "billion laughs" bomb):
  aliases stay shared objects while loading, and the expanded size is counted without expanding;
- malformed YAML, with the line, column and PyYAML's cause (tabs get a hint: YAML indents with spaces).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from .errors import UserError

MAX_VALUES = 100_000  # a config far beyond any real one; a 1 KB alias bomb expands to billions


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys (merge keys ``<<`` may still be overridden)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                try:
                    key = self.construct_object(key_node, deep=True)
                    hash(key)
                except (TypeError, ConstructorError):
                    continue  # an unhashable key: SafeConstructor reports it
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def expanded_size(value: Any, limit: int = MAX_VALUES) -> int:
    """How many values ``value`` holds once every alias is expanded (shared objects counted each time they are
    reached, but each one walked only once); stops counting past ``limit``."""
    memo: dict[int, int] = {}

    def size(v: Any) -> int:
        if isinstance(v, (dict, list)):
            key = id(v)
            if key in memo:
                return memo[key]
            memo[key] = 1  # a recursive alias counts once (and cannot loop)
            children = [x for kv in v.items() for x in kv] if isinstance(v, dict) else v
            total = 1
            for x in children:
                total += size(x)
                if total > limit:
                    break
            memo[key] = total
            return total
        return 1

    return size(value)


def _mark(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def parse_yaml(text: str, what: str) -> Any:
    """The YAML document ``text`` (``what`` names it in errors: "config file x.yaml"), checked as described in the
    module docstring."""
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except _DuplicateKey as dup:
        raise UserError(f"{what}: the key '{dup.key}' appears twice in one mapping (lines {dup.first} and "
                        f"{dup.second}): keep one of them") from None
    except yaml.YAMLError as exc:
        cause = " ".join(str(getattr(exc, "problem", None) or type(exc).__name__).split())
        hint = " (YAML indents with spaces, not tabs)" if "\\t" in cause or "\t" in cause else ""
        raise UserError(f"{what} is not valid YAML{_mark(exc)}: {cause}{hint}: fix its syntax") from None
    except RecursionError:
        raise UserError(f"{what} nests too deeply to read: flatten it") from None
    n = expanded_size(data)
    if n > MAX_VALUES:
        raise UserError(f"{what} expands to more than {MAX_VALUES:,} values through its aliases (*name): "
                        "write the values out or use fewer aliases") from None
    return data


def load_yaml(path: str | Path, what: str | None = None) -> Any:
    """Read and parse the YAML file ``path`` (see :func:`parse_yaml`); a missing or unreadable file is one line."""
    path = Path(path)
    what = what or f"YAML file {path}"
    try:
        text = path.read_text()
    except IsADirectoryError:
        raise UserError(f"{what} is a folder: pass a YAML file") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is not text (not UTF-8): pass a YAML file") from None
    except OSError as exc:
        raise UserError(f"{what} cannot be read ({exc.strerror}): check the path") from None
    return parse_yaml(text, what)


__all__ = ["MAX_VALUES", "StrictLoader", "expanded_size", "load_yaml", "parse_yaml"]
