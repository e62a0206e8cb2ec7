"""Building a model_info: the headline numbers merged from what each result declares
(:class:`~..measured.Declared`, asked of the evaluators by the caller), RobustBench's fields filled from them, and
the ``labelaug`` block (the model, the measured headlines with their protocols, the paper's numbers, every result).
Torch-free: it never imports an evaluator."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import keys
from ..measured import Declared, Measured, Merged, merge_headlines
from ..vocab import DEFAULT_THREAT_MODEL
from .robustbench_format import (
    ROBUSTBENCH_AUTOATTACK_PROTOCOL,
    ROBUSTBENCH_HEADLINES,
    UNKNOWN_TEXT,
    format_eps,
    is_number,
    percent,
)

SCHEMA_VERSION = 1
PIXEL_SPACE = "[0,1] pixel space (normalisation inside the model, RobustBench convention)"


def _classwise_ref(entry_id: str, result: Mapping[str, Any], key: str | None) -> dict[str, Any] | None:
    block = result.get("classwise", {}).get(key) if key else None
    if not block:
        return None
    return {"source": entry_id, "key": key, "summary": block.get("summary", {})}


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


def summarize_results(results: Mapping[str, Mapping[str, Any]], declared: Iterable[Declared]) -> dict[str, Any]:
    """Headline errors (%) from every evaluator's EvalResult dict (keyed by evaluator id, in config order), as
    each evaluator declares them (``declared``), merged by
    :func:`~.measured.merge_headlines`: the ``stored`` values flat, ``protocols`` per result, ``classwise``
    references (``results[source]["classwise"][key]``), ``headlines`` (every merged value as a record) and,
    where an attack's clean predictions stand in for a clean evaluator, ``clean_error_source``."""
    declared = list(declared)
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
    return {k: float(v) if k in keys.REPORTED_ERRORS and is_number(v) else v for k, v in reported.items()
            if v is not None}


def _paper_fields(paper: Any) -> dict[str, Any]:
    if isinstance(paper, Mapping):
        return {"name": paper.get("title"), "link": paper.get("url") or paper.get("link"),
                "authors": paper.get("authors"), "venue": paper.get("venue")}
    if isinstance(paper, str) and paper.startswith(("http://", "https://")):
        return {"link": paper}
    return {"name": paper} if paper else {}


def build_model_info(model: Mapping[str, Any], results: Mapping[str, Mapping[str, Any]], *,
                     reported: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                     declared: Iterable[Declared]) -> dict[str, Any]:
    """One model's model_info dict.

    ``model``: ``key`` (file name), ``dataset``, ``architecture``, ``training``, ``num_classes``, ``num_ops``,
    ``delta``, ``threat_model``, ``eps`` (training eps), optional ``paper`` (title/url/authors/venue or a string),
    ``class_names`` (in class-index order) and ``description``; ``results``: evaluator id -> EvalResult dict;
    ``reported``: the paper's numbers; ``declared``: what each result declares (asked of the evaluators that wrote
    them: :func:`robustbench_labelaug.evaluation.declare.model_info_from_results` does both)."""
    declared = list(declared)
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
        "class_names": [str(n) for n in model["class_names"]] if model.get("class_names") else None,
        **({"stochastic": True} if model.get("stochastic") else {}),
        "measured": measured,
        "reported": reported_n,
        "results": {k: dict(v) for k, v in results.items()},
        **dict(extra or {}),
    }
    return info


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
