"""Leaderboard tables (markdown and a self-contained HTML page) from model_info dicts.

Rows are sorted like RobustBench's leaderboards: by AutoAttack robust accuracy (highest first), then clean
accuracy; models without an AutoAttack number come after, by clean accuracy. Every number is an error in percent;
where the paper reports a number for the same metric it is shown beside the measured one,
``"26.70 (paper) / 31.20"``. Columns nobody has a value for are left out. Plain RobustBench model_info files
(without the ``labelaug`` block) get the columns their fields allow.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .model_info import PIXEL_SPACE, accuracy_to_error

Cell = str


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    cell: Callable[[Mapping[str, Any]], Cell]


def _num(value: Any) -> str:
    return "" if value is None else f"{float(value):.2f}"


def _with_paper(measured: Any, paper: Any) -> str:
    if paper is None:
        return _num(measured)
    if measured is None:
        return f"{_num(paper)} (paper)"
    return f"{_num(paper)} (paper) / {_num(measured)}"


def row_values(key: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers a row shows, from the ``labelaug`` block where present, else from the RobustBench fields."""
    extra = info.get("labelaug") or {}
    m, rep = extra.get("measured") or {}, extra.get("reported") or {}
    rep_cw = rep.get("classwise") or {}
    cw = m.get("classwise") or {}

    def summary(name: str, field: str) -> Any:
        return ((cw.get(name) or {}).get("summary") or {}).get(field)

    def paper_cw(names: Sequence[str], field: str) -> Any:
        for name in names:
            if isinstance(rep_cw.get(name), Mapping) and rep_cw[name].get(field) is not None:
                return rep_cw[name][field]
        return None

    has_paper_protocol = m.get("pgd_paper_error") is not None
    clean = m.get("clean_error", accuracy_to_error(info.get("clean_acc")))
    aa = m.get("autoattack_error", accuracy_to_error(info.get("autoattack_acc")))
    mce = m.get("mce")
    mce_norm = m.get("mce_normalized", None if info.get("corruptions_mce") is None
                     else float(info["corruptions_mce"]))
    return {
        "model": key,
        "training": extra.get("training") or "",
        "architecture": info.get("architecture") or "",
        "eps": info.get("eps") or "",
        "clean": clean, "clean_paper": rep.get("clean_error"),
        "aa": aa, "aa_n": m.get("autoattack_n"), "aa_paper": rep.get("autoattack_error"),
        "pgd": m.get("pgd_error"), "pgd_steps": m.get("pgd_steps"),
        "pgd_paper_protocol": m.get("pgd_paper_error"), "pgd_paper_steps": m.get("pgd_paper_steps"),
        # the paper's PGD number sits beside the run that follows the paper's protocol, when there is one
        "pgd_reported_on_paper_protocol": rep.get("pgd_error") if has_paper_protocol else None,
        "pgd_reported_on_sound": None if has_paper_protocol else rep.get("pgd_error"),
        "mce": mce, "mce_paper": rep.get("mce"), "mce_normalized": mce_norm,
        "real": m.get("real_error"), "real_paper": rep.get("real_error"),
        "sd_clean": summary("clean", "sd"), "sd_clean_paper": paper_cw(("clean",), "sd"),
        "sd_pgd": summary("pgd", "sd"),
        "sd_pgd_paper_protocol": summary("pgd_paper", "sd"),
        "sd_pgd_reported_on_paper_protocol": paper_cw(("pgd40", "pgd"), "sd") if has_paper_protocol else None,
        "sd_pgd_reported_on_sound": None if has_paper_protocol else paper_cw(("pgd40", "pgd"), "sd"),
        "worst_clean": summary("clean", "worst_error"),
        "worst_pgd": summary("pgd", "worst_error"),
        "masking_passed": m.get("masking_passed"), "masking_failed": m.get("masking_failed"),
        "masking_failed_checks": m.get("masking_failed_checks") or [],
        "clean_acc": None if clean is None else 100 - clean,
        "aa_acc": None if aa is None else 100 - aa,
    }


def _masking(v: Mapping[str, Any]) -> str:
    passed, failed = v["masking_passed"], v["masking_failed"]
    if passed is None and failed is None:
        return ""
    text = f"{passed or 0}/{(passed or 0) + (failed or 0)} passed"
    if failed:
        text += f" (failed: {', '.join(v['masking_failed_checks'])})"
    return text


def _steps_title(rows: Sequence[Mapping[str, Any]], key: str, default: str) -> str:
    steps = {r[key] for r in rows if r[key] is not None}
    return f"PGD-{steps.pop()}" if len(steps) == 1 else default


def columns(rows: Sequence[Mapping[str, Any]]) -> list[Column]:
    pgd = _steps_title(rows, "pgd_steps", "PGD")
    pgd_paper = _steps_title(rows, "pgd_paper_steps", "PGD")
    return [
        Column("model", "model", lambda v: v["model"]),
        Column("training", "training", lambda v: v["training"]),
        Column("clean", "clean err", lambda v: _with_paper(v["clean"], v["clean_paper"])),
        Column("aa", "AA err (n)", lambda v: "" if v["aa"] is None and v["aa_paper"] is None else
               _with_paper(v["aa"], v["aa_paper"]) + (f" ({v['aa_n']})" if v["aa_n"] else "")),
        Column("pgd", f"{pgd} err (sound)",
               lambda v: _with_paper(v["pgd"], v["pgd_reported_on_sound"])),
        Column("pgd_paper_protocol", f"{pgd_paper} err (paper protocol)",
               lambda v: _with_paper(v["pgd_paper_protocol"], v["pgd_reported_on_paper_protocol"])),
        Column("mce", "mCE", lambda v: _with_paper(v["mce"], v["mce_paper"])),
        Column("mce_normalized", "mCE (AlexNet=100)", lambda v: _num(v["mce_normalized"])),
        Column("real", "ReaL err", lambda v: _with_paper(v["real"], v["real_paper"])),
        Column("sd_clean", "class SD clean", lambda v: _with_paper(v["sd_clean"], v["sd_clean_paper"])),
        Column("sd_pgd", f"class SD {pgd} (sound)",
               lambda v: _with_paper(v["sd_pgd"], v["sd_pgd_reported_on_sound"])),
        Column("sd_pgd_paper_protocol", f"class SD {pgd_paper} (paper protocol)",
               lambda v: _with_paper(v["sd_pgd_paper_protocol"], v["sd_pgd_reported_on_paper_protocol"])),
        Column("worst_clean", "worst class clean", lambda v: _num(v["worst_clean"])),
        Column("worst_pgd", f"worst class {pgd} (sound)", lambda v: _num(v["worst_pgd"])),
        Column("masking", "masking checks", _masking),
    ]


def sort_key(v: Mapping[str, Any]) -> tuple:
    """RobustBench order: AutoAttack accuracy (desc), then clean accuracy (desc); no AA number sorts last."""
    has_aa = v["aa_acc"] is not None
    return (0 if has_aa else 1, -(v["aa_acc"] or 0.0), -(v["clean_acc"] if v["clean_acc"] is not None else -1.0),
            v["model"])


SORT_KEYS: dict[str, Callable[[Mapping[str, Any]], tuple]] = {
    "robustbench": sort_key,
    "clean": lambda v: (v["clean"] is None, v["clean"] if v["clean"] is not None else 0.0, v["model"]),
    "pgd": lambda v: (v["pgd"] is None, v["pgd"] if v["pgd"] is not None else 0.0, v["model"]),
    "mce": lambda v: (v["mce"] is None, v["mce"] if v["mce"] is not None else 0.0, v["model"]),
    "sd": lambda v: (v["sd_pgd"] is None, v["sd_pgd"] if v["sd_pgd"] is not None else 0.0, v["model"]),
    "name": lambda v: (v["model"],),
}


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    keys: list[str]  # model key per row, in order


def build_table(infos: Sequence[tuple[str, Mapping[str, Any]]], sort: str = "robustbench") -> Table:
    """Rows (sorted) and the columns anyone has a value for."""
    if sort not in SORT_KEYS:
        raise UserError(f"unknown sort '{sort}': use one of {', '.join(SORT_KEYS)}")
    values = sorted((row_values(k, i) for k, i in infos), key=SORT_KEYS[sort])
    cols = [c for c in columns(values) if c.key in ("model", "clean") or any(c.cell(v) for v in values)]
    return Table([c.title for c in cols], [[c.cell(v) for c in cols] for v in values], [v["model"] for v in values])


def _notes(infos: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    eps = sorted({str(i.get("eps")) for _, i in infos if i.get("eps")})
    notes = [f"Errors in %; eps = {', '.join(eps) or '?'} (L-inf) in {PIXEL_SPACE}; attacks target the K-way "
             "classifier (first K logits)."]
    notes.append("Sorted like RobustBench: AutoAttack robust accuracy, then clean accuracy; models without "
                 "AutoAttack last.")
    notes.append("PGD 'sound': the K-way classifier attacked with true labels, pixel-space eps and clipping to "
                 "[0,1]; 'paper protocol': the authors' evaluation code reproduced, for comparison with their "
                 "numbers. 'X (paper) / Y': the paper's number, then the measured one.")
    paper_eps = sorted({f"{float(e):.4g}" for _, i in infos
                        if (e := ((i.get("labelaug") or {}).get("measured") or {}).get("pgd_paper_eps_pixel"))})
    if paper_eps:
        notes.append(f"The paper protocol's eps is in normalised units; in pixel space it is {', '.join(paper_eps)} "
                     "(the largest channel's eps * std).")
    notes.append("mCE is the unnormalised mean corruption error (the paper's); class SD is the population SD of "
                 "the per-class errors; worst class is the highest per-class error.")
    return notes


def to_markdown(table: Table, infos: Sequence[tuple[str, Mapping[str, Any]]] = (), title: str = "Leaderboard"
                ) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"# {title}", "", "| " + " | ".join(table.header) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(table.header))) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in table.rows]
    lines += [""] + [f"- {n}" for n in _notes(infos)]
    return "\n".join(lines) + "\n"


def to_html(table: Table, infos: Sequence[tuple[str, Mapping[str, Any]]] = (), title: str = "Leaderboard") -> str:
    """A self-contained HTML page (inline CSS, no scripts)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in _notes(infos))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f0f0f0; }}
td:nth-child(n+3) {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr:nth-child(even) {{ background: #fafafa; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<ul>{notes}</ul>
</body></html>
"""


def summary_line(key: str, info: Mapping[str, Any]) -> str:
    """One line of a model's headline numbers, as its evaluators declare them (``Evaluator.headline``)."""
    from .model_info import headline_values

    shown = [h.text() for h in headline_values((info.get("labelaug") or {}).get("results") or {}).values() if h.show]
    return f"{key}: " + " | ".join(shown)


__all__ = ["SORT_KEYS", "Table", "build_table", "row_values", "sort_key", "summary_line", "to_html", "to_markdown"]
