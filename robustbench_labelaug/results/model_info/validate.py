"""Validating a model_info: RobustBench's ModelInfo schema (its fields, their types and ranges, as its own files
have them) and, where present, a well-formed ``labelaug`` block (the values the table and plots compute with)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ...errors import UserError
from .. import keys
from ..vocab import PRECISIONS
from .robustbench_format import (
    MODEL_INFO_FIELDS,
    PERCENT_FIELDS,
    RATIO_FIELDS,
    REQUIRED_FIELDS,
    ROBUSTBENCH_EXTRA_FIELDS,
    STRING_FIELDS,
    UNKNOWN_NUMBER_TEXT,
    is_number,
    parse_eps,
)


def validate_model_info(info: Any, source: str = "model_info") -> None:
    """:class:`UserError` unless ``info`` follows the RobustBench ModelInfo schema (and, when present, a
    well-formed ``labelaug`` block)."""
    if not isinstance(info, Mapping):
        raise UserError(f"{source} is not a JSON object: a model_info file holds one object of ModelInfo fields")
    unknown = sorted(set(info) - set(MODEL_INFO_FIELDS) - set(ROBUSTBENCH_EXTRA_FIELDS) - {"labelaug"})
    if unknown:
        raise UserError(f"{source} has unknown fields {unknown}: use RobustBench's model_info fields "
                        "(extensions go under 'labelaug')")
    missing = [f for f in REQUIRED_FIELDS if f not in info]
    if missing:
        raise UserError(f"{source} lacks the field(s) {missing}: write it with rbla evaluate or add them")
    for f in PERCENT_FIELDS + RATIO_FIELDS:
        v = info.get(f)
        if v is None or v in UNKNOWN_NUMBER_TEXT:
            continue
        try:
            ok = isinstance(v, str) and 0.0 <= float(v) <= (math.inf if f in RATIO_FIELDS else 100.0)
        except ValueError:
            ok = False
        if not ok:
            what = "a percent string >= 0 like \"66.43\"" if f in RATIO_FIELDS else "a percent string like \"64.02\""
            raise UserError(f"{source}: '{f}' must be {what}, \"\" or null, got {v!r}")
    for f in STRING_FIELDS:
        if info.get(f) is not None and not isinstance(info[f], str):
            raise UserError(f"{source}: '{f}' must be a string or null, got {info[f]!r}")
    if info.get("eps") is not None:
        try:
            parse_eps(info["eps"])
        except (ValueError, ZeroDivisionError):
            raise UserError(f"{source}: 'eps' must look like \"0.03\" or \"4/255\", got {info['eps']!r}") from None
    if not isinstance(info.get("additional_data"), bool):
        raise UserError(f"{source}: 'additional_data' must be true or false")
    if "unreliable" in info and not isinstance(info["unreliable"], bool):
        raise UserError(f"{source}: 'unreliable' must be true or false, got {info['unreliable']!r}")
    n = info.get("number_forward_passes")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UserError(f"{source}: 'number_forward_passes' must be an integer >= 1, got {n!r}")
    extra = info.get("labelaug")
    if extra is not None:
        if not isinstance(extra, Mapping) or not isinstance(extra.get("measured", {}), Mapping) \
                or not isinstance(extra.get("results", {}), Mapping):
            raise UserError(f"{source}: 'labelaug' must be an object with 'measured' and 'results' objects")
        problem = _labelaug_type_problem(extra)
        if problem:
            raise UserError(f"{source}: {problem}: rewrite the file with rbla evaluate or fix that value")


# labelaug.measured: the values the table and plots compute with (other keys are not checked)
_KINDS = {"object": Mapping, "list": list}


def _labelaug_type_problem(extra: Mapping[str, Any]) -> str | None:
    """What is wrong with the types in a ``labelaug`` block (the values the table and plots compute with), or
    None."""
    for key in ("num_classes", "num_ops"):
        v = extra.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            return f"'labelaug.{key}' must be an integer or null, got {v!r}"
    for key in ("training", "model", "threat_model"):
        v = extra.get(key)
        if v is not None and not isinstance(v, str):
            return f"'labelaug.{key}' must be a string or null, got {v!r}"
    names = extra.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        return "'labelaug.class_names' must be a list of strings or null"
    data = extra.get("data")  # the evaluated tensors (benchmark(dataset=(x, y))): what the leaderboard groups by
    if data is not None and (not isinstance(data, Mapping) or not isinstance(data.get("name"), str)
                             or not isinstance(data.get("fingerprint"), str) or not data["fingerprint"]):
        return "'labelaug.data' must be an object with the strings 'name' and 'fingerprint'"
    measured = extra.get("measured") or {}
    for key, v in measured.items():
        if v is None:
            continue
        if key in keys.NON_NUMBERS:
            kind = keys.NON_NUMBERS[key]
            if not isinstance(v, _KINDS[kind]):
                return f"'labelaug.measured.{key}' must be {'a list' if kind == 'list' else 'an object'}, got {v!r}"
        elif (key in keys.NUMBERS or key.endswith(keys.NUMBER_SUFFIXES)) and not is_number(v):
            return f"'labelaug.measured.{key}' must be a number or null, got {v!r}"
        elif keys.is_error(key) and is_number(v) and not math.isfinite(v):
            return f"'labelaug.measured.{key}' must be a finite number or null, got {v!r}"
    for i, h in enumerate(measured.get("headlines") or []):
        if not isinstance(h, Mapping) or not isinstance(h.get("key"), str) or not isinstance(h.get("label"), str) \
                or not isinstance(h.get("unit", ""), str) or not isinstance(h.get("protocol") or "", str):
            return (f"'labelaug.measured.headlines[{i}]' must be an object with strings 'key', 'label', 'unit' and "
                    f"'protocol', got {h!r}")
        if h.get("precision") not in (None, *PRECISIONS):
            return (f"'labelaug.measured.headlines[{i}].precision' must be one of {', '.join(PRECISIONS)}, "
                    f"got {h['precision']!r}")
        if h.get("unit", "%") == "%" and h.get("value") is not None and not is_number(h.get("value")):
            return f"'labelaug.measured.headlines[{i}].value' ({h['key']}, in %) must be a number, got {h['value']!r}"
        if is_number(h.get("value")) and not math.isfinite(h["value"]):
            return f"'labelaug.measured.headlines[{i}].value' ({h['key']}) must be a finite number, got {h['value']!r}"
    for name, ref in (measured.get("classwise") or {}).items():
        if not isinstance(ref, Mapping) or not isinstance(ref.get("summary", {}), Mapping):
            return f"'labelaug.measured.classwise.{name}' must be an object with a 'summary' object"
        for field in ("mean", keys.SD, keys.WORST_ERROR):
            v = ref.get("summary", {}).get(field)
            if v is not None and (not is_number(v) or not math.isfinite(v)):
                return f"'labelaug.measured.classwise.{name}.summary.{field}' must be a finite number, got {v!r}"
    reported = extra.get("reported") or {}
    if not isinstance(reported, Mapping):
        return "'labelaug.reported' must be an object"
    for key in keys.REPORTED_ERRORS:
        v = reported.get(key)
        if v is not None and not is_number(v):
            return f"'labelaug.reported.{key}' must be a number or null, got {v!r}"
    for name, block in (reported.get("classwise") or {}).items():
        if not isinstance(block, Mapping) or any(block.get(f) is not None and not is_number(block.get(f))
                                                 for f in ("mean", "sd")):
            return f"'labelaug.reported.classwise.{name}' must be an object with numbers 'mean' and 'sd'"
    for entry_id, result in (extra.get("results") or {}).items():
        if not isinstance(result, Mapping):
            return f"'labelaug.results.{entry_id}' must be an object"
        for block_name, block in (result.get("classwise") or {}).items():
            errors = block.get(keys.ERROR) if isinstance(block, Mapping) else None
            if errors is not None and (not isinstance(errors, list)
                                       or not all(e is None or is_number(e) for e in errors)):
                return f"'labelaug.results.{entry_id}.classwise.{block_name}.error' must be a list of numbers"
            counts = block.get("n") if isinstance(block, Mapping) else None
            if counts is not None and (not isinstance(counts, list) or not all(
                    isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
                return (f"'labelaug.results.{entry_id}.classwise.{block_name}.n' must be a list of counts "
                        "(non-negative integers)")
    title = extra.get("title")
    if title is not None and not isinstance(title, str):
        return f"'labelaug.title' must be a string or null, got {title!r}"
    return None
