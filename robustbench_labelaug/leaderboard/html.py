"""The leaderboard as one self-contained, offline HTML page (Jinja2 template ``templates/leaderboard.html.j2``).

What the page holds, all inline (no CDN, no external file): one table per dataset x threat model, sortable by any
column (numbers as numbers, ties keep their order) and filtered by a search box; the run's facts (n per
evaluator, protocols, fast mode, eps) once above each table; per model a detail view (a row that opens below it,
also reachable as ``#model-<key>``) with the per-class table (class names, n, error per evaluator, 95 % Wilson
intervals), the worst class named, the masking checks with their numbers, the corruption table, and the model's
class-wise and corruption figures as SVG data URIs. Written by ``rbla evaluate``, ``rbla demo`` and
``rbla leaderboard --html``.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..data.registry import class_names
from ..results import keys
from ..results.model_info import PIXEL_SPACE
from ..results.outcomes import Outcome, outcome_of, stored_checks
from ..scoring.intervals import classwise_intervals
from .plots import (
    classwise_figure,
    corruption_ce,
    corruption_table,
    corruptions_figure,
    curves_figure,
    figure_bytes,
    overview_figure,
)
from .table import ALWAYS_SHOWN, Table, as_tables, leaderboard_notes

TEMPLATE = "leaderboard.html.j2"
ModelInfos = Sequence[tuple[str, Mapping[str, Any]]]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v, digits) for v in value) + "]"
    return str(value)


def slug(text: str) -> str:
    """An HTML id from a model key (letters, digits, ``-``, ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "model"


def _block(info: Mapping[str, Any]) -> Mapping[str, Any]:
    return info.get("labelaug") or {}


def _protocol_labels(info: Mapping[str, Any]) -> dict[str, str]:
    return dict((_block(info).get("measured") or {}).get("protocols") or {})


def ordered_results(info: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The model's results in the config's evaluator order (``labelaug.evaluators``), others after them."""
    block = _block(info)
    results = {k: v for k, v in (block.get("results") or {}).items() if isinstance(v, Mapping)}
    order = [e.get("id") for e in block.get("evaluators") or [] if isinstance(e, Mapping)]
    first = [(k, results[k]) for k in order if k in results]
    return first + [(k, v) for k, v in results.items() if k not in order]


def _result_label(rid: str, result: Mapping[str, Any], protocols: Mapping[str, str]) -> str:
    if protocols.get(rid):
        return str(protocols[rid])
    return str(result.get("evaluator") or rid)


def run_facts(infos: ModelInfos) -> list[str]:
    """The run's settings, stated once above a table: per evaluator (config id) its protocol and n (the values the
    models have, joined when they differ), fast mode, eps and its units."""
    facts: dict[str, dict[str, list[str]]] = {}
    for _, info in infos:
        protocols = _protocol_labels(info)
        for rid, result in ordered_results(info):
            entry = facts.setdefault(rid, {"label": [], "n": []})
            label = _result_label(rid, result, protocols)
            if label not in entry["label"]:
                entry["label"].append(label)
            n = result.get("num_examples")
            if n not in (None, 0) and str(n) not in entry["n"]:
                entry["n"].append(str(n))
    lines = []
    for rid, entry in facts.items():
        label = " / ".join(entry["label"])
        what = rid if label == rid else f"{rid}: {label}"
        lines.append(what + (f", n = {' / '.join(entry['n'])}" if entry["n"] else ""))
    fast = {bool(_block(info).get("fast")) for _, info in infos if _block(info)}
    if fast:
        lines.append("fast mode: " + ("yes (smoke-test sizes: not numbers to compare or publish)" if fast == {True}
                                      else "some models yes, some no" if len(fast) > 1 else "no (full run)"))
    eps = sorted({str(info.get("eps")) for _, info in infos if info.get("eps")})
    if eps:
        lines.append(f"eps = {', '.join(eps)} in {PIXEL_SPACE}")
    return lines


def _converter(metric: str):
    if metric == "acc":
        return (lambda v: None if v is None else 100.0 - float(v)), \
            (lambda ci: None if ci is None else (100.0 - ci[1], 100.0 - ci[0]))
    return (lambda v: v), (lambda ci: ci)


def classwise_detail(info: Mapping[str, Any], metric: str = "err") -> dict[str, Any] | None:
    """The per-class table of one model: a column per class-wise block of its results (error or accuracy in %,
    95 % Wilson CI from the class's n), the classes' names and n, and each block's worst class named."""
    block = _block(info)
    results = block.get("results") or {}
    protocols = _protocol_labels(info)
    conv, conv_ci = _converter(metric)
    word = "acc" if metric == "acc" else "err"
    has_clean_evaluator = any(isinstance(r, Mapping) and r.get("evaluator") == "clean" for r in results.values())
    columns = []
    for rid, result in ordered_results(info):
        blocks = result.get("classwise") or {}
        for ckey, cw in blocks.items():
            if not isinstance(cw, Mapping) or cw.get(keys.ERROR) is None:
                continue
            if ckey == "clean" and result.get("evaluator") != "clean" and has_clean_evaluator:
                continue  # an attack's clean pass: the clean evaluator's column has it
            label = _result_label(rid, result, protocols)
            if len(blocks) > 1 and ckey != "clean":
                label = f"{label} ({ckey})" if ckey not in label.lower() else label
            elif ckey == "clean" and result.get("evaluator") != "clean":
                label = f"{label}, clean pass"
            errors = [None if e is None else float(e) for e in cw[keys.ERROR]]
            counts = cw.get("n")
            cis = classwise_intervals(errors, counts)
            summary = cw.get("summary") or {}
            columns.append({"id": rid, "label": label, "values": [conv(e) for e in errors],
                            "cis": [conv_ci(ci) for ci in cis], "n": None if counts is None else list(counts),
                            "summary": summary, "word": word})
    if not columns:
        return None
    k = max(len(c["values"]) for c in columns)
    names = block.get("class_names")
    if not names or len(names) != k:
        names = class_names(str(info.get("dataset") or "").lower() or None, num_classes=k) or [str(i) for i in range(k)]
    ns = [tuple(c["n"]) for c in columns if c["n"] is not None]
    # the n most columns share gets one column after the class; a column with other n (a subset) gets its own
    common_n = list(max(set(ns), key=ns.count)) if ns else None
    for c in columns:
        c["own_n"] = c["n"] is not None and list(c["n"]) != common_n
    rows = []
    for i in range(k):
        cells = []
        for c in columns:
            v = c["values"][i] if i < len(c["values"]) else None
            ci = c["cis"][i] if i < len(c["cis"]) else None
            n = c["n"][i] if c["n"] is not None and i < len(c["n"]) else None
            cells.append({"value": _fmt(v), "ci": "" if ci is None else f"[{ci[0]:.1f}, {ci[1]:.1f}]",
                          "n": "" if n is None else str(n), "sort": v})
        rows.append({"name": str(names[i]), "index": i, "n": "" if common_n is None else str(common_n[i]),
                     "cells": cells})
    worst = []
    for c in columns:
        s = c["summary"]
        wc = s.get("worst_class")
        if wc is None:
            finite = [(v, i) for i, v in enumerate(c["values"]) if v is not None]
            if not finite:
                continue
            wc = (min if metric == "acc" else max)(finite)[1]
        wc = int(wc)
        value = c["values"][wc] if wc < len(c["values"]) else None
        n = c["n"][wc] if c["n"] is not None and wc < len(c["n"]) else None
        ci = s.get("worst_error_ci")
        text = f"{c['label']}: class {names[wc] if wc < len(names) else wc} ({word} {_fmt(value)} %"
        text += f", n = {n}" if n is not None else ""
        if ci:
            lo, hi = conv_ci(ci)
            text += f"; bootstrap 95 % CI of the worst-class {word} [{lo:.1f}, {hi:.1f}]"
        worst.append({"label": c["label"], "name": str(names[wc]) if wc < len(names) else str(wc),
                      "text": text + ")"})
    return {"columns": [{"label": c["label"], "word": word, "own_n": c["own_n"]} for c in columns],
            "rows": rows, "common_n": common_n is not None, "worst": worst,
            "ci_note": "95 % Wilson score interval of each class's error from its n" if ns else
                       "no per-class n stored (a result from before this version): no per-class CIs"}


def _check_numbers(check: Mapping[str, Any]) -> str:
    parts = []
    for key, value in check.items():
        if key in ("name", "passed", "outcome", "conclusive", "n_to_decide"):
            continue
        if isinstance(value, (int, float, bool, str)) or (isinstance(value, (list, tuple)) and len(value) <= 6 and
                                                         all(isinstance(v, (int, float)) for v in value)):
            parts.append(f"{key} = {_fmt(value)}")
    return "; ".join(parts)


def masking_detail(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The masking checks of every masking result: name, outcome (passed, FAILED, inconclusive; skipped ones with
    the reason), and their numbers."""
    status = {Outcome.PASSED: "passed", Outcome.FAILED: "FAILED", Outcome.INCONCLUSIVE: "inconclusive"}
    out = []
    for rid, result in ordered_results(info):
        if result.get("evaluator") != "masking":
            continue
        for c in stored_checks(result):
            outcome = outcome_of(c)
            numbers = _check_numbers(c)
            if outcome is Outcome.INCONCLUSIVE and c.get("n_to_decide"):
                numbers = f"n ≈ {c['n_to_decide']} would decide it; {numbers}"
            out.append({"source": rid, "name": str(c.get("name")), "status": status[outcome], "numbers": numbers})
        skipped = (result.get("details") or {}).get("skipped") or {}
        if isinstance(skipped, Mapping):
            out += [{"source": rid, "name": str(name), "status": "skipped", "numbers": str(reason)}
                    for name, reason in skipped.items()]
    return out


def corruption_detail(info: Mapping[str, Any], metric: str = "err") -> dict[str, Any] | None:
    """The corruption table: error (or accuracy) per corruption and severity, CE per corruption, mCE."""
    table = corruption_table(info)
    if table is None:
        return None
    names, severities, values = table
    conv, _ = _converter(metric)
    ce = corruption_ce(values)
    rows = [{"name": n.replace("_", " "), "cells": [_fmt(conv(v)) for v in values.get(n, [])],
             "ce": _fmt(conv(ce.get(n)))} for n in names]
    block = _block(info)
    source = (block.get("measured") or {}).get("corruptions_source")
    mce = (((block.get("results") or {}).get(source) or {}).get("metrics") or {}).get("mce")  # the headline's
    if mce is None:
        finite = [v for v in ce.values() if not math.isnan(v)]
        mce = sum(finite) / len(finite) if finite else None
    return {"severities": [str(s) for s in severities], "rows": rows, "mce": _fmt(conv(mce)),
            "word": "acc" if metric == "acc" else "err"}


def _data_uri(fig) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(figure_bytes(fig, "svg")).decode()


def model_plots(key: str, info: Mapping[str, Any]) -> list[dict[str, str]]:
    """The model's class-wise and corruption figures as SVG data URIs."""
    out = []
    for alt, make in ((f"class-wise error of {key}", classwise_figure),
                      (f"corruption error of {key}", corruptions_figure),
                      (f"robustness curves of {key}", curves_figure)):
        fig = make([(key, info)])
        if fig is not None:
            out.append({"alt": alt, "src": _data_uri(fig)})
    return out


def _file_name(path: Any) -> str | None:
    """A file's name without its folders: the page never prints a local absolute path (a shared file would show
    where it was made)."""
    if not isinstance(path, str) or not path:
        return None
    return re.split(r"[\\/]", path.rstrip("/\\"))[-1] or None


def model_detail(key: str, info: Mapping[str, Any], metric: str = "err", plots: bool = True) -> dict[str, Any]:
    block = _block(info)
    facts = [(label, value) for label, value in (
        ("training", block.get("training")), ("architecture", info.get("architecture")),
        ("dataset", info.get("dataset")), ("eps", info.get("eps")), ("K", block.get("num_classes")),
        ("M", block.get("num_ops")), ("delta", block.get("delta")), ("checkpoint", _file_name(block.get("checkpoint"))),
        ("config", _file_name(block.get("config")))) if value not in (None, "")]
    return {"key": key, "facts": [{"label": a, "value": _fmt(b)} for a, b in facts],
            "classwise": classwise_detail(info, metric), "masking": masking_detail(info),
            "corruptions": corruption_detail(info, metric), "plots": model_plots(key, info) if plots else []}


def _sort_value(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return repr(float(value)) if math.isfinite(float(value)) else ""


CLIP_CHARS = 28  # a text cell longer than this is clipped on the main view, its full text on hover


def _overview(members: ModelInfos) -> dict[str, str] | None:
    fig = overview_figure(members)
    return None if fig is None else {"alt": "overview: each model's mean robust error over the classes against the "
                                             "class SD of its robust error (the class gap)", "src": _data_uri(fig)}


def page_context(table: Table | Sequence[Table], infos: ModelInfos, title: str = "Leaderboard",
                 metric: str = "err", plots: bool = True) -> dict[str, Any]:
    """What the template renders: title, notes, and per group its facts, overview figure, header (with units) and
    rows (cells with their sort values, links and hover text, and the model's detail).

    The main view fits a laptop screen (1 400 px): a text column with the same value in every row (the
    architecture of every model, what every model is ranked by) is stated once among the facts, the secondary
    measures (headlines the evaluators keep out of the summary line) move into each model's details, and long
    text (a paper's title) is clipped with the full text on hover."""
    by_key = dict(infos)
    groups = []
    for gi, t in enumerate(as_tables(table)):
        members = [(k, by_key[k]) for k in t.keys if k in by_key]
        notes = dict(t.footnotes)
        n_cols = len(t.header)
        values = t.values or [[None] * n_cols for _ in t.rows]
        links = t.links or [[None] * n_cols for _ in t.rows]
        hovers = t.hovers or [[None] * n_cols for _ in t.rows]
        units = t.units or [""] * n_cols
        secondary = t.secondary or [False] * n_cols
        numeric = [any(r[i] is not None for r in values) for i in range(n_cols)]
        uniform = [i for i in range(n_cols) if len(t.rows) > 1 and not numeric[i] and t.header[i] not in ALWAYS_SHOWN
                   and len({row[i] for row in t.rows}) == 1 and len({h[i] for h in hovers}) == 1]
        facts = [f"{t.header[i]}: {t.rows[0][i]}" + (f" ({hovers[0][i]})" if hovers[0][i] else "")
                 + " (every model)" for i in uniform if t.rows[0][i]]
        main = [i for i in range(n_cols) if not secondary[i] and i not in uniform]
        model_col = main.index(t.header.index("model")) if "model" in t.header else 0
        rows = []
        for key, row, row_values, row_links, row_hovers in zip(t.keys, t.rows, values, links, hovers):
            info = by_key.get(key, {})
            cells = []
            for i in main:
                text, v, link, hover = row[i], row_values[i], row_links[i], row_hovers[i]
                clip = t.header[i] != "model" and len(text) > CLIP_CHARS  # a title, a masking summary
                cells.append({"text": text, "sort": _sort_value(v), "link": link if link and text else None,
                              "title": hover or (text if clip else None), "clip": clip})
            more = [{"label": f"{t.header[i]}" + (f" ({units[i]})" if units[i] else ""), "value": row[i]}
                    for i in range(n_cols) if secondary[i] and row[i]]
            detail = model_detail(key, info, metric, plots) if info else None
            if detail is not None:
                detail["more"] = more
            rows.append({"key": key, "id": f"g{gi}-{slug(key)}", "cells": cells, "note": notes.get(key, ""),
                         "detail": detail})
        groups.append({"name": t.group or "other", "id": f"g{gi}", "facts": run_facts(members) + facts,
                       "header": [{"title": t.header[i], "unit": units[i], "numeric": numeric[i]} for i in main],
                       "model_col": model_col, "rows": rows, "width": len(main),
                       "overview": _overview(members) if plots else None})
    return {"title": title, "groups": groups, "notes": leaderboard_notes(infos, metric),
            "metric_word": "accuracy" if metric == "acc" else "error"}


def to_html(table: Table | Sequence[Table], infos: ModelInfos = (), title: str = "Leaderboard",
            metric: str = "err", plots: bool = True) -> str:
    """The self-contained page (see the module doc); ``plots=False`` leaves the figures out (faster)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("robustbench_labelaug.leaderboard", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template(TEMPLATE).render(**page_context(table, infos, title, metric, plots))


__all__ = ["TEMPLATE", "classwise_detail", "corruption_detail", "masking_detail", "model_detail", "model_plots",
           "page_context", "run_facts", "slug", "to_html"]
