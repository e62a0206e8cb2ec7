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

Torch-free: building takes what the evaluators declared (:class:`~.measured.Declared`); reading and validating
never import an evaluator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..store import in_evaluation_folder
from . import keys
from .measured import Declared, Measured, Merged, merge_headlines
from .vocab import DEFAULT_THREAT_MODEL, PRECISIONS, THREAT_MODELS, ThreatModel

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
    "clean_acc": (keys.CLEAN_ERROR, "clean err", "acc"),
    "autoattack_acc": (keys.AUTOATTACK_ERROR, "AA err", "acc"),
    "corruptions_acc": (keys.CORRUPTIONS_ERROR, "corruption err", "acc"),
    "corruptions_mce": (keys.MCE_NORMALIZED, "mCE (AlexNet=100)", "ratio"),
}



def autoattack_protocol(version: str, first_n: bool = True) -> str:
    """The protocol an AutoAttack headline names: ``AutoAttack standard`` on the first n points (RobustBench's
    choice), ``... (class-balanced points)`` on points taken round-robin over the classes."""
    return f"AutoAttack {version}" + ("" if first_n else " (class-balanced points)")


# RobustBench's ``autoattack_acc`` is standalone standard AutoAttack on its first n test points: a model_info's field
# is filled only from a headline of exactly that protocol. Ours under another (the "PGD-40 + AutoAttack" union of
# ``pgd_first``, class-balanced points, version plus / rand) stays in ``labelaug.measured.autoattack_error`` with its
# own label and protocol, and the field is null (said in the footnote), so no RobustBench reader mistakes it.
ROBUSTBENCH_AUTOATTACK_PROTOCOL = autoattack_protocol("standard", first_n=True)

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
# Headline numbers from evaluator results (what the evaluators declared: results.measured.Declared)
# ----------------------------------------------------------------------------------------------------------------


def _classwise_ref(entry_id: str, result: Mapping[str, Any], key: str | None) -> dict[str, Any] | None:
    block = result.get("classwise", {}).get(key) if key else None
    if not block:
        return None
    return {"source": entry_id, "key": key, "summary": block.get("summary", {})}


def declare(results: Mapping[str, Mapping[str, Any]]) -> list[Declared]:
    """What each stored result declares, asked of the evaluator that wrote it (imports the evaluators, so torch:
    only building a model_info needs this; reading one never does)."""
    from ..evaluation.declare import declare_results

    return declare_results(results)


def headlines(declared: Iterable[Declared]) -> list[tuple[str, Measured]]:
    """``(entry id, Measured)`` for every headline number every result declares (config order)."""
    return [(d.entry_id, h) for d in declared for h in d.headlines if h.value is not None]


def headline_values(declared: Iterable[Declared]) -> dict[str, Measured]:
    """The headline per key over a model's results (:func:`~.measured.merge_headlines`)."""
    return {k: m.measured for k, m in merge_headlines(headlines(declared)).items()}


def headline_records(merged: Mapping[str, Merged]) -> list[dict[str, Any]]:
    """Merged headlines as JSON records (``key``, ``label``, ``value``, ``unit``, ``protocol``, ``show``,
    ``source``: the result's id, ``precision`` where not fp32) in the order the results first declare each key:
    ``labelaug.measured.headlines``, which the leaderboard's columns come from (so a file renders without the
    evaluator that wrote it)."""
    return [{**m.measured.record(), "source": m.source} for m in merged.values()]


def stored_headlines(info: Mapping[str, Any]) -> dict[str, Measured]:
    """A model_info's headline numbers, key -> :class:`Measured`: ``labelaug.measured.headlines``; in files
    written before headlines were stored, the numbers of ``labelaug.measured`` (labelled from their key); in
    RobustBench's files its own fields under the same keys (:data:`ROBUSTBENCH_HEADLINES`). Reads only what the
    file declares (no evaluator is imported)."""
    extra = info.get("labelaug")
    if extra:
        measured = extra.get("measured") or {}
        records = measured.get("headlines")
        if records is not None:
            return {r["key"]: Measured.from_record(r) for r in records}
        return {k: Measured(k, _label_of_key(k), v) for k, v in measured.items()
                if (keys.is_error(k) or k == keys.MCE_NORMALIZED) and _is_num(v)}
    out = {}
    for field, (key, label, kind) in ROBUSTBENCH_HEADLINES.items():
        value = number(info.get(field))
        if value is not None:
            out[key] = Measured(key, label, 100.0 - value if kind == "acc" else value)
    return out


def _label_of_key(key: str) -> str:
    """A label for a stored number without a declared one (older files): ``clean_error`` -> ``clean err``."""
    return key.removesuffix(keys.ERROR_SUFFIX).replace("_", " ") + (" err" if key.endswith(keys.ERROR_SUFFIX) else "")


def headline_sources(info: Mapping[str, Any]) -> dict[str, str]:
    """Headline key -> the id of the result that gave it, as stored in ``labelaug.measured.headlines``."""
    records = ((info.get("labelaug") or {}).get("measured") or {}).get("headlines") or []
    return {r["key"]: r["source"] for r in records if isinstance(r, Mapping) and r.get("source") is not None}


def summarize_results(results: Mapping[str, Mapping[str, Any]],
                      declared: Iterable[Declared] | None = None) -> dict[str, Any]:
    """Headline errors (%) from every evaluator's EvalResult dict (keyed by evaluator id, in config order), as
    each evaluator declares them (``declared``; asked of the evaluators when None), merged by
    :func:`~.measured.merge_headlines`: the ``stored`` values flat, ``protocols`` per result, ``classwise``
    references (``results[source]["classwise"][key]``), ``headlines`` (every merged value as a record) and,
    where an attack's clean predictions stand in for a clean evaluator, ``clean_error_source``."""
    declared = list(declare(results) if declared is None else declared)
    pairs = headlines(declared)
    merged = merge_headlines(pairs)
    m: dict[str, Any] = {"classwise": {}, "protocols": {}}
    for entry_id, h in pairs:
        if h.protocol:
            m["protocols"].setdefault(entry_id, h.protocol)
    m.update({k: v.measured.value for k, v in merged.items() if v.measured.stored})
    for d in declared:
        for role, key in d.classwise_refs.items():
            m["classwise"].setdefault(role, _classwise_ref(d.entry_id, results.get(d.entry_id) or {}, key))
        if d.source_key:
            m.setdefault(d.source_key, d.entry_id)
    clean = merged.get(keys.CLEAN_ERROR)
    if clean is not None and clean.from_fallback:  # no clean evaluator: an attack's clean predictions
        m[keys.CLEAN_ERROR_SOURCE] = clean.source
    m["classwise"] = {k: v for k, v in m["classwise"].items() if v is not None}
    m["headlines"] = headline_records(merged)
    return {k: v for k, v in m.items() if v is not None}


def normalize_reported(reported: Mapping[str, Any] | None) -> dict[str, Any]:
    """The paper's numbers (errors, %) under the metric keys (:data:`~.keys.REPORTED_ERRORS`, as floats), other
    entries (class-wise mean/SD, source, note) kept as given."""
    if not reported:
        return {}
    return {k: float(v) if k in keys.REPORTED_ERRORS and _is_num(v) else v for k, v in reported.items()
            if v is not None}


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
                     reported: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                     declared: Iterable[Declared] | None = None) -> dict[str, Any]:
    """One model's model_info dict.

    ``model``: ``key`` (file name), ``dataset``, ``architecture``, ``training``, ``num_classes``, ``num_ops``,
    ``delta``, ``threat_model``, ``eps`` (training eps), optional ``paper`` (title/url/authors/venue or a string)
    and ``description``; ``results``: evaluator id -> EvalResult dict; ``reported``: the paper's numbers;
    ``declared``: what each result declares (:func:`declare`, which asks the evaluators, when None)."""
    declared = declare(results) if declared is None else list(declared)
    measured = summarize_results(results, declared)
    attack_eps = _attack_eps(declared)
    eps = attack_eps if attack_eps is not None else model.get("eps")
    paper = _paper_fields(model.get("paper"))
    reported_n = normalize_reported(reported)
    reported_robust = reported_n.get(keys.AUTOATTACK_ERROR, reported_n.get(keys.PGD_ERROR))

    def field(name: str) -> str | None:  # a RobustBench number field from its measured headline
        key, _, kind = ROBUSTBENCH_HEADLINES[name]
        value = measured.get(key)
        return percent(None if value is None else (100 - value if kind == "acc" else value))

    aa_protocol = _headline_protocol(measured, keys.AUTOATTACK_ERROR)
    robustbench_aa = aa_protocol == ROBUSTBENCH_AUTOATTACK_PROTOCOL

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
        "autoattack_acc": field("autoattack_acc") if robustbench_aa else None,
        "footnote": _footnote(model, measured, reported_robust is not None and keys.AUTOATTACK_ERROR not in reported_n,
                              aa_protocol if not robustbench_aa else None),
    }
    info["labelaug"] = {
        "schema": SCHEMA_VERSION,
        "model": str(model["key"]),
        "training": model.get("training"),
        "num_classes": model.get("num_classes"),
        "num_ops": model.get("num_ops"),
        "delta": model.get("delta"),
        "threat_model": model.get("threat_model", DEFAULT_THREAT_MODEL),
        "eps": eps,
        "train_eps": model.get("eps"),
        "eps_space": PIXEL_SPACE,
        "classifier": "K-way: the first K of the model's K+M logits",
        "class_names": class_names(model),
        **({"stochastic": True} if model.get("stochastic") else {}),
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


def _attack_eps(declared: Iterable[Declared]) -> float | None:
    """The threat model's eps: the one of the result that defines it first by rank (AutoAttack before a sound
    PGD run, as the evaluators declare)."""
    ranked = [(d.eps_rank, i, d.eps) for i, d in enumerate(declared) if d.eps is not None]
    return float(min(ranked)[2]) if ranked else None


def _headline_protocol(measured: Mapping[str, Any], key: str) -> str | None:
    """The protocol of the merged headline ``key`` (``measured["headlines"]``), None where absent."""
    for record in measured.get("headlines") or []:
        if record.get("key") == key:
            return record.get("protocol")
    return None


def _footnote(model: Mapping[str, Any], measured: Mapping[str, Any], reported_is_pgd: bool,
              other_aa: str | None = None) -> str:
    training = f"{model['training']} training" if model.get("training") else "training not stated"
    parts = [f"{training}, K={model.get('num_classes')}, M={model.get('num_ops')}",
             f"eps in {PIXEL_SPACE}"]
    if measured.get(keys.AUTOATTACK_N):
        version = measured.get(keys.AUTOATTACK_VERSION, "standard")
        attack = measured.get(keys.AUTOATTACK_ATTACK) or f"AutoAttack ({version})"
        parts.append(f"{attack} on {measured[keys.AUTOATTACK_N]} test images")
    if other_aa is not None and measured.get(keys.AUTOATTACK_ERROR) is not None:
        parts.append(f"autoattack_acc left empty: {other_aa} is not RobustBench's standalone standard AutoAttack on "
                     "its first n points (the number is labelaug.measured.autoattack_error)")
    if reported_is_pgd:
        parts.append("'reported' is the paper's PGD-40 robust accuracy, not AutoAttack")
    if model.get("stochastic"):
        parts.append("declared stochastic: its logits vary between calls, each number is one draw (AutoAttack: its "
                     "randomised version)")
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
        elif (key in keys.NUMBERS or key.endswith(keys.NUMBER_SUFFIXES)) and not _is_num(v):
            return f"'labelaug.measured.{key}' must be a number or null, got {v!r}"
        elif keys.is_error(key) and _is_num(v) and not math.isfinite(v):
            return f"'labelaug.measured.{key}' must be a finite number or null, got {v!r}"
    for i, h in enumerate(measured.get("headlines") or []):
        if not isinstance(h, Mapping) or not isinstance(h.get("key"), str) or not isinstance(h.get("label"), str) \
                or not isinstance(h.get("unit", ""), str) or not isinstance(h.get("protocol") or "", str):
            return (f"'labelaug.measured.headlines[{i}]' must be an object with strings 'key', 'label', 'unit' and "
                    f"'protocol', got {h!r}")
        if h.get("precision") not in (None, *PRECISIONS):
            return (f"'labelaug.measured.headlines[{i}].precision' must be one of {', '.join(PRECISIONS)}, "
                    f"got {h['precision']!r}")
        if h.get("unit", "%") == "%" and h.get("value") is not None and not _is_num(h.get("value")):
            return f"'labelaug.measured.headlines[{i}].value' ({h['key']}, in %) must be a number, got {h['value']!r}"
        if _is_num(h.get("value")) and not math.isfinite(h["value"]):
            return f"'labelaug.measured.headlines[{i}].value' ({h['key']}) must be a finite number, got {h['value']!r}"
    for name, ref in (measured.get("classwise") or {}).items():
        if not isinstance(ref, Mapping) or not isinstance(ref.get("summary", {}), Mapping):
            return f"'labelaug.measured.classwise.{name}' must be an object with a 'summary' object"
        for field in ("mean", keys.SD, keys.WORST_ERROR):
            v = ref.get("summary", {}).get(field)
            if v is not None and (not _is_num(v) or not math.isfinite(v)):
                return f"'labelaug.measured.classwise.{name}.summary.{field}' must be a finite number, got {v!r}"
    reported = extra.get("reported") or {}
    if not isinstance(reported, Mapping):
        return "'labelaug.reported' must be an object"
    for key in keys.REPORTED_ERRORS:
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
            errors = block.get(keys.ERROR) if isinstance(block, Mapping) else None
            if errors is not None and (not isinstance(errors, list)
                                       or not all(e is None or _is_num(e) for e in errors)):
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


def model_info_files(folder: str | Path) -> list[Path]:
    """The model_info JSONs under ``folder``: ``folder/model_info/**.json`` when that folder exists (the layout
    ``rbla evaluate`` writes), else ``folder/**.json`` (e.g. RobustBench's ``model_info/<dataset>/<threat>/``),
    less the files of evaluation folders in it (``mine.evaluation/`` beside ``Report.to_model_info("mine.json")``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: pass the output folder of rbla evaluate (or a folder of "
                        "model_info JSONs)")
    root = folder / "model_info" if (folder / "model_info").is_dir() else folder
    # every JSON, a model named ".x" too; not the "._x.json" resource forks macOS leaves on foreign disks, nor the
    # files of evaluation folders in it (mine.evaluation/ beside Report.to_model_info("mine.json"))
    files = sorted(p for p in root.rglob("*.json") if not p.name.startswith("._") and not in_evaluation_folder(p, root))
    if not files:
        computed = sorted(p.parent.parent.name for p in folder.glob("*/results/*.json"))
        if computed:
            raise UserError(f"no model_info JSON files under {root}, though {folder} holds results of "
                            f"{', '.join(dict.fromkeys(computed))}: re-run rbla evaluate with the same config and "
                            "output, which writes them from the stored results without recomputing")
        raise UserError(f"no model_info JSON files under {root}: run rbla evaluate -c CONFIG first")
    return files


def load_model_info(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}): fix or delete it") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a JSON text file (not UTF-8; binary data?): delete it or move it out of "
                        "the folder") from None
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror}): check the file") from None
    validate_model_info(info, str(path))
    return info


# In-memory only (never written): the threat model named by the file's folder in RobustBench's layout.
FOLDER_THREAT_MODEL = "_folder_threat_model"
FOLDER_DATASET = "_folder_dataset"


def dataset_of(info: Mapping[str, Any]) -> str:
    """The ``<dataset>`` folder of RobustBench's layout the file was read from, else its ``dataset`` field; data
    recorded by content (``labelaug.data.fingerprint``: ``benchmark(dataset=(x, y))`` tensors) add the
    fingerprint, so models evaluated on other tensors are never ranked in one table."""
    name = str(info.get(FOLDER_DATASET) or info.get("dataset") or "")
    data = (info.get("labelaug") or {}).get("data") if isinstance(info.get("labelaug"), Mapping) else None
    if isinstance(data, Mapping) and data.get("fingerprint"):
        return f"{name} {data['fingerprint']}"
    return name


def threat_model_of(info: Mapping[str, Any]) -> str | None:
    """``labelaug.threat_model``, else the ``<dataset>/<threat_model>/`` folder the file was read from, else what its
    fields say (a corruption file has ``corruptions_acc`` and no ``autoattack_acc``); None when unknown."""
    extra = info.get("labelaug") or {}
    if extra.get("threat_model"):
        return str(extra["threat_model"])
    if info.get(FOLDER_THREAT_MODEL):
        return str(info[FOLDER_THREAT_MODEL])
    if info.get("corruptions_acc") not in (None, "") and info.get("autoattack_acc") in (None, ""):
        return ThreatModel.CORRUPTIONS
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


__all__ = ["THREAT_MODELS", "declare",
           "MODEL_INFO_FIELDS", "PIXEL_SPACE", "REQUIRED_FIELDS", "ROBUSTBENCH_EXTRA_FIELDS",
           "SCHEMA_VERSION", "UNKNOWN_TEXT", "accuracy_to_error", "build_model_info", "class_names", "number",
           "format_eps", "load_model_info", "load_model_infos", "headline_records", "headline_sources",
           "headline_values", "headlines",
           "ROBUSTBENCH_HEADLINES", "stored_headlines", "FOLDER_DATASET", "FOLDER_THREAT_MODEL",
           "model_info_files", "normalize_reported", "parse_eps", "percent", "summarize_results",
           "dataset_of", "threat_model_of", "validate_model_info"]
