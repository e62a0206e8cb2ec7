"""RobustBench ``model_info`` JSONs, extended with a ``labelaug`` block.

The top level has exactly the fields of ``robustbench.utils.ModelInfo`` (1.1.1) with RobustBench's conventions:
accuracies in percent as strings with two decimals (``"clean_acc": "64.02"``), ``eps`` as a string (``"4/255"``
when it is a multiple of 1/255, else ``"0.03"``), ``reported`` = the robust accuracy the paper reports, and
``null`` where nothing was measured. Unknown text uses RobustBench's own values for it (from its model_info
files): ``"venue": "N/A"``, ``"authors": ""``, ``"reported": ""``, ``"link": ""`` (never ``null``, which its
template renders as ``href="None"``). RobustBench's leaderboard tooling reads these files as they are.

Reading, RobustBench's whole file schema is accepted, as found in its ``model_info/<dataset>/<threat_model>/``
files: the ModelInfo fields plus ``external`` (best known robust accuracy from another attack, a percent string)
and ``unreliable`` (AutoAttack's evaluation may be unreliable, a bool); ``""`` for an unknown number; no
``autoattack_acc`` in corruption files; mCE values (AlexNet = 100) above 100.

Everything else sits under ``"labelaug"``: the model (training mode, K, M, delta, threat model, pixel-space eps),
the headline numbers as *errors* in percent (``measured``), the protocol of every robust number, the paper's
numbers (``reported``, from the zoo entry, never mixed with measured ones) and every evaluator's full
:class:`~robustbench_labelaug.evaluation.base.EvalResult` (``results``, keyed by the config's evaluator id).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..evaluation.base import Measured

SCHEMA_VERSION = 1

# robustbench.utils.ModelInfo's fields, in its order (checked against the installed package by the tests).
MODEL_INFO_FIELDS: tuple[str, ...] = (
    "link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue", "architecture",
    "eps", "clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d", "corruptions_mce",
    "corruptions_mce_3d", "autoattack_acc", "footnote",
)
# Fields of RobustBench's model_info files that its ModelInfo dataclass (1.1.1) lacks.
ROBUSTBENCH_EXTRA_FIELDS: tuple[str, ...] = ("external", "unreliable")
# Fields every file must have (value may be null where noted in the type table); every RobustBench file has them
# (corruption files have no autoattack_acc).
REQUIRED_FIELDS: tuple[str, ...] = ("name", "dataset", "architecture", "eps", "clean_acc", "additional_data",
                                    "number_forward_passes")
# Accuracies (percent strings, 0-100; "" or null: unknown).
PERCENT_FIELDS = ("clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d", "autoattack_acc", "external")
# Mean corruption errors normalised by AlexNet's (AlexNet = 100): a ratio in percent, above 100 for models worse
# than AlexNet.
RATIO_FIELDS = ("corruptions_mce", "corruptions_mce_3d")
STRING_FIELDS = ("link", "name", "authors", "dataset", "venue", "architecture", "eps", "footnote")
# RobustBench's values for unknown text (as in its own model_info files).
UNKNOWN_TEXT = {"link": "", "authors": "", "venue": "N/A", "reported": ""}
# Text RobustBench's files use for an unknown number ("null" as a string in one of them).
UNKNOWN_NUMBER_TEXT = ("", "null", "N/A")

PIXEL_SPACE = "[0,1] pixel space (normalisation inside the model, RobustBench convention)"

# RobustBench's model_info number fields -> (this package's headline key, label, "acc": an accuracy in % whose error
# is the headline, "ratio": the value as it is). build_model_info writes these fields from the measured headlines;
# the leaderboard reads a RobustBench file's fields as these headlines, so its rows share the columns with ours.
ROBUSTBENCH_HEADLINES: dict[str, tuple[str, str, str]] = {
    "clean_acc": ("clean_error", "clean err", "acc"),
    "autoattack_acc": ("autoattack_error", "AA err", "acc"),
    "corruptions_acc": ("corruptions_error", "corruption err", "acc"),
    "corruptions_mce": ("mce_normalized", "mCE (AlexNet=100)", "ratio"),
}

# Paper numbers in a zoo entry's ``reported`` block, under the names this package uses (aliases accepted).
REPORTED_ALIASES: dict[str, tuple[str, ...]] = {
    "clean_error": ("clean_error", "clean", "clean_err"),
    "mce": ("mce", "mCE", "corruptions_mce"),
    "pgd_error": ("pgd40_error", "pgd_error", "pgd40", "pgd"),
    "real_error": ("real_error", "real"),
    "autoattack_error": ("autoattack_error", "autoattack"),
}


# ----------------------------------------------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------------------------------------------


def percent(value: float | None) -> str | None:
    """``12.345`` -> ``"12.35"`` (RobustBench's percent strings); None/NaN -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{float(value):.2f}"


def format_eps(eps: float | None) -> str | None:
    """RobustBench's eps string: ``"4/255"`` for multiples of 1/255, else the plain number (``"0.03"``)."""
    if eps is None:
        return None
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) > 0:
        return f"{round(k)}/255"
    return f"{eps:g}"


def parse_eps(text: str | None) -> float | None:
    """Inverse of :func:`format_eps` (``"4/255"`` or ``"0.03"``)."""
    if text is None:
        return None
    num, _, den = str(text).partition("/")
    return float(num) / float(den) if den else float(num)


def number(value: str | float | None) -> float | None:
    """A model_info number (``"64.02"``, 64.02) as a float; None for RobustBench's unknown values (null, ``""``,
    and the text ``"null"`` one of its files has)."""
    if value is None or (isinstance(value, str) and value.strip() in UNKNOWN_NUMBER_TEXT):
        return None
    return float(value)


def accuracy_to_error(acc: str | float | None) -> float | None:
    acc = number(acc)
    return None if acc is None else 100.0 - acc


# ----------------------------------------------------------------------------------------------------------------
# Headline numbers from evaluator results
# ----------------------------------------------------------------------------------------------------------------


def _first(mapping: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None


def _classwise_ref(entry_id: str, result: Mapping[str, Any], key: str | None) -> dict[str, Any] | None:
    block = result.get("classwise", {}).get(key) if key else None
    if not block:
        return None
    return {"source": entry_id, "key": key, "summary": block.get("summary", {})}


def evaluator_of(result: Mapping[str, Any]):
    """The evaluator class that wrote a stored result, or None for a name this package does not know."""
    from ..evaluation import EVALUATORS, evaluator_class

    name = result.get("evaluator")
    return evaluator_class(name) if name in EVALUATORS else None


def headlines(results: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Measured]]:
    """``(entry id, Measured)`` for every headline number every result declares (config order)."""
    out = []
    for entry_id, r in results.items():
        cls = evaluator_of(r)
        if cls is not None:
            out += [(entry_id, h) for h in cls.measured(r) if h.value is not None]
    return out


def headline_values(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Measured]:
    """The headline per key over a model's results: the first result giving a key wins; ``fallback`` values
    count only where no result gives the key; ``accumulate`` values are summed (see :func:`summarize_results`)."""
    out: dict[str, Measured] = {}
    fallbacks: dict[str, Measured] = {}
    for _, h in headlines(results):
        if h.fallback:
            fallbacks.setdefault(h.key, h)
        elif h.accumulate and h.key in out:
            out[h.key] = replace(out[h.key], value=out[h.key].value + h.value)
        else:
            out.setdefault(h.key, h)
    return {**{k: h for k, h in fallbacks.items() if k not in out}, **out}


def headline_sources(results: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Headline key -> the id of the result that gives it (as :func:`headline_values` picks it; summed keys: the
    first)."""
    firm: dict[str, str] = {}
    fallback: dict[str, str] = {}
    for entry_id, h in headlines(results):
        (fallback if h.fallback else firm).setdefault(h.key, entry_id)
    return {**fallback, **firm}


def headline_records(results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`headline_values` as JSON records (``key``, ``label``, ``value``, ``unit``, ``protocol``, ``show``,
    ``source``: the result's id) in the order the results first declare each key: ``labelaug.measured.headlines``,
    which the leaderboard's columns come from (so a file renders even where the evaluator that wrote it is not
    installed)."""
    values, sources = headline_values(results), headline_sources(results)
    order = list(dict.fromkeys(h.key for _, h in headlines(results)))
    records = [{"key": k, "label": values[k].label, "value": values[k].value, "unit": values[k].unit,
                "protocol": values[k].protocol, "show": values[k].show, "source": sources.get(k)}
               for k in order if k in values]
    for r in records:  # a forward pass in bf16/fp16 (opt-in) is named beside its number
        if values[r["key"]].precision:
            r["precision"] = values[r["key"]].precision
    return records


def stored_headlines(info: Mapping[str, Any]) -> dict[str, Measured]:
    """A model_info's headline numbers, key -> :class:`Measured`: ``labelaug.measured.headlines`` where written,
    else declared afresh from ``labelaug.results`` (files written before headlines were stored), else RobustBench's
    own fields under the same keys (:data:`ROBUSTBENCH_HEADLINES`)."""
    extra = info.get("labelaug")
    if extra:
        records = (extra.get("measured") or {}).get("headlines")
        if records is None:
            return headline_values(extra.get("results") or {})
        return {r["key"]: Measured(r["key"], r["label"], r.get("value"), unit=r.get("unit", "%"),
                                   protocol=r.get("protocol"), show=bool(r.get("show", True)),
                                   precision=r.get("precision")) for r in records}
    out = {}
    for field, (key, label, kind) in ROBUSTBENCH_HEADLINES.items():
        value = number(info.get(field))
        if value is not None:
            out[key] = Measured(key, label, 100.0 - value if kind == "acc" else value)
    return out


def pgd_protocol(result: Mapping[str, Any]) -> str:
    from ..evaluation.pgd import pgd_protocol as protocol

    return protocol(result)


def summarize_results(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Headline errors (%) from every evaluator's EvalResult dict (keyed by evaluator id, in config order), as
    each evaluator declares them (:meth:`Evaluator.headline`).

    Where two results give the same key (e.g. two sound PGD runs), the first one listed gives the headline;
    ``accumulate`` keys add up; ``fallback`` keys (an attack's clean error) count only when no result gives the
    key. Class-wise entries point at their source (``results[source]["classwise"][key]``)."""
    m: dict[str, Any] = {"classwise": {}, "protocols": {}}
    cw = m["classwise"]
    fallbacks: dict[str, tuple[str, Any]] = {}
    for entry_id, h in headlines(results):
        if h.protocol:
            m["protocols"].setdefault(entry_id, h.protocol)
        if not h.stored:
            continue
        if h.fallback:
            fallbacks.setdefault(h.key, (entry_id, h.value))
        elif h.accumulate:
            m[h.key] = m[h.key] + h.value if h.key in m else h.value
        else:
            m.setdefault(h.key, h.value)
    for entry_id, r in results.items():
        cls = evaluator_of(r)
        if cls is None:
            continue
        for role, key in cls.classwise_refs(r).items():
            cw.setdefault(role, _classwise_ref(entry_id, r, key))
        if cls.source_key:
            m.setdefault(cls.source_key, entry_id)
    if "clean_error" not in m and "clean_error" in fallbacks:  # no clean evaluator: an attack's clean predictions
        source = fallbacks["clean_error"][0]
        m.update({k: v for k, (e, v) in fallbacks.items() if e == source}, clean_error_source=source)
    m["classwise"] = {k: v for k, v in cw.items() if v is not None}
    m["headlines"] = headline_records(results)
    return {k: v for k, v in m.items() if v is not None}


def normalize_reported(reported: Mapping[str, Any] | None) -> dict[str, Any]:
    """The paper's numbers (errors, %) under this package's names; class-wise mean/SD kept as given."""
    if not reported:
        return {}
    out: dict[str, Any] = {}
    for name, aliases in REPORTED_ALIASES.items():
        value = _first(reported, aliases)
        if isinstance(value, (int, float)):
            out[name] = float(value)
    for key, value in reported.items():
        if key not in {a for aliases in REPORTED_ALIASES.values() for a in aliases}:
            out.setdefault(key, value)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Building, validating, loading
# ----------------------------------------------------------------------------------------------------------------


def _paper_fields(paper: Any) -> dict[str, Any]:
    if isinstance(paper, Mapping):
        return {"name": paper.get("title"), "link": paper.get("url") or paper.get("link"),
                "authors": paper.get("authors"), "venue": paper.get("venue")}
    if isinstance(paper, str) and paper.startswith(("http://", "https://")):
        return {"link": paper}
    return {"name": paper} if paper else {}


def build_model_info(model: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]], *,
                     reported: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None
                     ) -> dict[str, Any]:
    """One model's model_info dict.

    ``model``: ``key`` (file name), ``dataset``, ``architecture``, ``training``, ``num_classes``, ``num_ops``,
    ``delta``, ``threat_model``, ``eps`` (training eps), optional ``paper`` (title/url/authors/venue or a string)
    and ``description``; ``results``: evaluator id -> EvalResult dict; ``reported``: the paper's numbers."""
    measured = summarize_results(results)
    attack_eps = _attack_eps(results)
    eps = attack_eps if attack_eps is not None else model.get("eps")
    paper = _paper_fields(model.get("paper"))
    reported_n = normalize_reported(reported)
    reported_robust = reported_n.get("autoattack_error", reported_n.get("pgd_error"))

    def field(name: str) -> str | None:  # a RobustBench number field from its measured headline
        key, _, kind = ROBUSTBENCH_HEADLINES[name]
        value = measured.get(key)
        return percent(None if value is None else (100 - value if kind == "acc" else value))

    info: dict[str, Any] = {
        "link": paper.get("link") or UNKNOWN_TEXT["link"],
        "name": paper.get("name") or model.get("description") or str(model["key"]),
        "authors": paper.get("authors") or UNKNOWN_TEXT["authors"],
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": str(model.get("dataset")),
        "venue": paper.get("venue") or UNKNOWN_TEXT["venue"],
        "architecture": str(model.get("architecture")),
        "eps": format_eps(eps),
        "clean_acc": field("clean_acc"),
        "reported": percent(None if reported_robust is None else 100 - reported_robust) or UNKNOWN_TEXT["reported"],
        "corruptions_acc": field("corruptions_acc"),
        "corruptions_acc_3d": None,
        "corruptions_mce": field("corruptions_mce"),
        "corruptions_mce_3d": None,
        "autoattack_acc": field("autoattack_acc"),
        "footnote": _footnote(model, measured, reported_robust is not None and "autoattack_error" not in reported_n),
    }
    info["labelaug"] = {
        "schema": SCHEMA_VERSION,
        "model": str(model["key"]),
        "training": model.get("training"),
        "num_classes": model.get("num_classes"),
        "num_ops": model.get("num_ops"),
        "delta": model.get("delta"),
        "threat_model": model.get("threat_model", "Linf"),
        "eps": eps,
        "train_eps": model.get("eps"),
        "eps_space": PIXEL_SPACE,
        "classifier": "K-way: the first K of the model's K+M logits",
        "class_names": class_names(model),
        "measured": measured,
        "reported": reported_n,
        "results": {k: dict(v) for k, v in results.items()},
        **dict(extra or {}),
    }
    return info


def class_names(model: Mapping[str, Any]) -> list[str] | None:
    """The model's class names in class-index order when known: ``model["class_names"]`` (e.g. a folder
    dataset's), else its registered dataset's (the dataset registry's, read without torch; None where the
    registry has none, or where their number differs from the model's K)."""
    from ..data.registry import class_names as registered_class_names

    names = model.get("class_names")
    if names:
        return [str(n) for n in names]
    return registered_class_names(str(model.get("dataset") or "").lower() or None, num_classes=model.get("num_classes"))


def _attack_eps(results: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The threat model's eps: the AutoAttack run's, else the first sound PGD run's."""
    for kind in ("autoattack", "pgd"):
        for r in results.values():
            if r.get("evaluator") == kind and (kind != "pgd" or pgd_protocol(r) == "sound"):
                eps = r.get("settings", {}).get("eps")
                if eps is not None:
                    return float(eps)
    return None


def _footnote(model: Mapping[str, Any], measured: Mapping[str, Any], reported_is_pgd: bool) -> str:
    parts = [f"{model.get('training', '?')} training, K={model.get('num_classes')}, M={model.get('num_ops')}",
             f"eps in {PIXEL_SPACE}"]
    if measured.get("autoattack_n"):
        attack = measured.get("autoattack_attack") or f"AutoAttack ({measured.get('autoattack_version', 'standard')})"
        parts.append(f"{attack} on {measured['autoattack_n']} test images")
    if reported_is_pgd:
        parts.append("'reported' is the paper's PGD-40 robust accuracy, not AutoAttack")
    return "; ".join(parts)


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


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# labelaug.measured: the values the table and plots compute with (other keys are not checked)
_MEASURED_NUMBER_SUFFIXES = ("_error", "_n", "_steps", "_eps_pixel")
_MEASURED_NUMBERS = {"mce", "mce_normalized", "masking_passed", "masking_failed"}
_MEASURED_OTHER = {"classwise": Mapping, "protocols": Mapping, "masking_failed_checks": list, "headlines": list}


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
    measured = extra.get("measured") or {}
    for key, v in measured.items():
        if v is None:
            continue
        if key in _MEASURED_OTHER:
            if not isinstance(v, _MEASURED_OTHER[key]):
                kind = "a list" if key == "masking_failed_checks" else "an object"
                return f"'labelaug.measured.{key}' must be {kind}, got {v!r}"
        elif (key in _MEASURED_NUMBERS or key.endswith(_MEASURED_NUMBER_SUFFIXES)) and not _is_num(v):
            return f"'labelaug.measured.{key}' must be a number or null, got {v!r}"
    for i, h in enumerate(measured.get("headlines") or []):
        if not isinstance(h, Mapping) or not isinstance(h.get("key"), str) or not isinstance(h.get("label"), str) \
                or not isinstance(h.get("unit", ""), str) or not isinstance(h.get("protocol") or "", str):
            return (f"'labelaug.measured.headlines[{i}]' must be an object with strings 'key', 'label', 'unit' and "
                    f"'protocol', got {h!r}")
        if h.get("precision") not in (None, "fp32", "bf16", "fp16"):
            return f"'labelaug.measured.headlines[{i}].precision' must be fp32, bf16 or fp16, got {h['precision']!r}"
        if h.get("unit", "%") == "%" and h.get("value") is not None and not _is_num(h.get("value")):
            return f"'labelaug.measured.headlines[{i}].value' ({h['key']}, in %) must be a number, got {h['value']!r}"
    for name, ref in (measured.get("classwise") or {}).items():
        if not isinstance(ref, Mapping) or not isinstance(ref.get("summary", {}), Mapping):
            return f"'labelaug.measured.classwise.{name}' must be an object with a 'summary' object"
        for field in ("mean", "sd", "worst_error"):
            v = ref.get("summary", {}).get(field)
            if v is not None and not _is_num(v):
                return f"'labelaug.measured.classwise.{name}.summary.{field}' must be a number, got {v!r}"
    reported = extra.get("reported") or {}
    if not isinstance(reported, Mapping):
        return "'labelaug.reported' must be an object"
    for key in REPORTED_ALIASES:
        v = reported.get(key)
        if v is not None and not _is_num(v):
            return f"'labelaug.reported.{key}' must be a number or null, got {v!r}"
    for name, block in (reported.get("classwise") or {}).items():
        if not isinstance(block, Mapping) or any(block.get(f) is not None and not _is_num(block.get(f))
                                                 for f in ("mean", "sd")):
            return f"'labelaug.reported.classwise.{name}' must be an object with numbers 'mean' and 'sd'"
    for entry_id, result in (extra.get("results") or {}).items():
        if not isinstance(result, Mapping):
            return f"'labelaug.results.{entry_id}' must be an object"
        for block_name, block in (result.get("classwise") or {}).items():
            errors = block.get("error") if isinstance(block, Mapping) else None
            if errors is not None and (not isinstance(errors, list)
                                       or not all(e is None or _is_num(e) for e in errors)):
                return f"'labelaug.results.{entry_id}.classwise.{block_name}.error' must be a list of numbers"
    return None


def model_info_files(folder: str | Path) -> list[Path]:
    """The model_info JSONs under ``folder``: ``folder/model_info/**.json`` when that folder exists (the layout
    ``rbla evaluate`` writes), else ``folder/**.json`` (e.g. RobustBench's ``model_info/<dataset>/<threat>/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: pass the output folder of rbla evaluate (or a folder of "
                        "model_info JSONs)")
    root = folder / "model_info" if (folder / "model_info").is_dir() else folder
    files = sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
    if not files:
        raise UserError(f"no model_info JSON files under {root}: run rbla evaluate -c CONFIG first")
    return files


def load_model_info(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}): fix or delete it") from None
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror}): check the file") from None
    validate_model_info(info, str(path))
    return info


THREAT_MODELS = ("Linf", "L2", "corruptions", "corruptions_3d")
# In-memory only (never written): the threat model named by the file's folder in RobustBench's layout.
FOLDER_THREAT_MODEL = "_folder_threat_model"
FOLDER_DATASET = "_folder_dataset"


def dataset_of(info: Mapping[str, Any]) -> str:
    """The ``<dataset>`` folder of RobustBench's layout the file was read from, else its ``dataset`` field."""
    return str(info.get(FOLDER_DATASET) or info.get("dataset") or "")


def threat_model_of(info: Mapping[str, Any]) -> str | None:
    """``labelaug.threat_model``, else the ``<dataset>/<threat_model>/`` folder the file was read from, else what its
    fields say (a corruption file has ``corruptions_acc`` and no ``autoattack_acc``); None when unknown."""
    extra = info.get("labelaug") or {}
    if extra.get("threat_model"):
        return str(extra["threat_model"])
    if info.get(FOLDER_THREAT_MODEL):
        return str(info[FOLDER_THREAT_MODEL])
    if info.get("corruptions_acc") not in (None, "") and info.get("autoattack_acc") in (None, ""):
        return "corruptions"
    return None


def load_model_infos(folder: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(model key, model_info)`` for every JSON under ``folder`` (see :func:`model_info_files`). The key is
    ``labelaug.model``, else the file name without ``.json``; where RobustBench's layout has the same name in
    several folders (e.g. ``imagenet/Linf/Standard_R50`` and ``imagenet/corruptions/Standard_R50``), the path
    below ``folder`` without ``.json``."""
    out: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, Path] = {}
    files = model_info_files(folder)
    folder = Path(folder)
    root = folder / "model_info" if (folder / "model_info").is_dir() else folder
    stems: dict[str, int] = {}
    for path in files:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    for path in files:
        info = load_model_info(path)
        rel = path.relative_to(root)
        if len(rel.parts) >= 2 and rel.parts[-2] in THREAT_MODELS:
            info[FOLDER_THREAT_MODEL] = rel.parts[-2]
            if len(rel.parts) >= 3:
                info[FOLDER_DATASET] = rel.parts[-3]
        default = path.stem if stems[path.stem] == 1 else rel.with_suffix("").as_posix()
        key = str((info.get("labelaug") or {}).get("model") or default)
        if key in seen:
            raise UserError(f"{path} and {seen[key]} both describe model '{key}': keep one of them")
        seen[key] = path
        out.append((key, info))
    return out


__all__ = ["MODEL_INFO_FIELDS", "PIXEL_SPACE", "REQUIRED_FIELDS", "ROBUSTBENCH_EXTRA_FIELDS",
           "SCHEMA_VERSION", "UNKNOWN_TEXT", "accuracy_to_error", "build_model_info", "class_names", "number",
           "format_eps", "load_model_info", "load_model_infos", "headline_records", "headline_sources",
           "headline_values", "headlines",
           "ROBUSTBENCH_HEADLINES", "stored_headlines",
           "model_info_files", "normalize_reported", "parse_eps", "percent", "summarize_results",
           "dataset_of", "threat_model_of", "validate_model_info"]
