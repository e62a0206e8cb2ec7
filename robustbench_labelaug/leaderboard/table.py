"""Leaderboard tables (markdown and a self-contained HTML page) from model_info dicts.

RobustBench's published model_info files and this project's measured ones mix in one table. Models are grouped
by dataset and threat model (RobustBench's ``<dataset>/<threat_model>/`` folders; ours say theirs in
``labelaug.threat_model``; a file with neither counts as L-inf, RobustBench's default) and each group is sorted like
RobustBench's leaderboards: by the best known robust accuracy (``external`` where given, else AutoAttack's; for
corruptions, ``corruptions_acc``), highest first, then clean accuracy; models without such a number come last.
Columns follow RobustBench's table (rank, paper with link, extra data, architecture, venue, best known / AutoAttack
robust accuracy, "potentially unreliable") plus this project's (PGD, mCE, class-wise SD and worst class, masking
checks). Numbers are errors in percent (``metric="err"``, the paper's convention) or accuracies
(``metric="acc"``, RobustBench's); where the paper reports a number for the same metric it is shown beside the
measured one, ``"26.70 (paper) / 31.20"``. Columns nobody has a value for are left out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from .model_info import PIXEL_SPACE, THREAT_MODELS, accuracy_to_error, dataset_of, number, threat_model_of

Cell = str


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    cell: Callable[[Mapping[str, Any]], Cell]
    link: Callable[[Mapping[str, Any]], str | None] | None = None  # the cell links there (HTML, markdown)


METRICS = ("err", "acc")


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
    mce_norm = m.get("mce_normalized", number(info.get("corruptions_mce")))
    return {
        "model": key,
        "training": extra.get("training") or "",
        "architecture": info.get("architecture") or "",
        "eps": info.get("eps") or "",
        "clean": clean, "clean_paper": rep.get("clean_error"),
        "aa": aa, "aa_n": m.get("autoattack_n"), "aa_paper": rep.get("autoattack_error"),
        "aa_attack": m.get("autoattack_attack"),
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


def robustbench_values(key: str, info: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """RobustBench's own columns for a row (``base``: :func:`row_values`): paper name and link, venue, extra data,
    footnote, ``external`` / ``unreliable``, and the accuracy its leaderboard sorts by."""
    external = number(info.get("external"))
    best = external if external is not None else base.get("aa_acc")
    threat = threat_model_of(info) or ("Linf" if base.get("aa_acc") is not None else None)
    corruptions_acc = number(info.get("corruptions_acc"))
    sort_acc = best
    if sort_acc is None and (threat or "").startswith("corruptions"):
        sort_acc = corruptions_acc
    link = info.get("link")
    return {
        "rank": None,
        "paper": "" if info.get("name") in (None, key) else info["name"],  # our name falls back to the key
        "link": link if isinstance(link, str) and link.startswith(("http://", "https://")) else None,
        "venue": info.get("venue") or "",
        "extra_data": info.get("additional_data"),
        "footnote": _plain_text(info.get("footnote")),
        "external": None if external is None else 100.0 - external,
        "best": None if best is None else 100.0 - best,
        "unreliable": info.get("unreliable"),
        # RobustBench's corruption accuracy, for files that have no mCE table of ours
        "corruptions": None if corruptions_acc is None or base.get("mce") is not None else 100.0 - corruptions_acc,
        "sort_acc": sort_acc,
        "published": not info.get("labelaug"),  # a RobustBench file, not one of ours
        "dataset": dataset_of(info),
        "threat_model": threat,
    }


def _plain_text(text: Any) -> str:
    """A RobustBench footnote (HTML and MathJax inside) as one line of plain text."""
    if not isinstance(text, str):
        return ""
    text = re.sub(r"<br\s*/?>", "; ", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("\\(", "").replace("\\)", "").replace("\\ell_{\\infty}", "Linf")
    return html.unescape(" ".join(text.split()))


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


def columns(rows: Sequence[Mapping[str, Any]], metric: str = "err") -> list[Column]:
    """The table's columns; ``metric`` ``"err"`` shows errors, ``"acc"`` accuracies (100 - error) for every
    error/accuracy column (class SD and mCE are the same either way)."""
    pgd = _steps_title(rows, "pgd_steps", "PGD")
    pgd_paper = _steps_title(rows, "pgd_paper_steps", "PGD")
    acc = metric == "acc"
    unit = "acc" if acc else "err"

    def c(value: Any) -> Any:
        return None if value is None else (100.0 - value if acc else value)

    def paper(measured: str, reported: str) -> Callable[[Mapping[str, Any]], str]:
        return lambda v: _with_paper(c(v[measured]), c(v[reported]))

    any_external = any(v.get("external") is not None for v in rows)
    unions = {str(r.get("aa_attack")).split(" + ")[0] for r in rows if " + " in str(r.get("aa_attack") or "")}
    aa_title = f"{'/'.join(sorted(unions))} + AA {unit} (n)" if unions else f"AA {unit} (n)"  # e.g. PGD-40 + AA
    return [
        Column("rank", "rank", lambda v: str(v["rank"])),
        Column("model", "model", lambda v: v["model"]),
        Column("paper", "paper", lambda v: v["paper"], link=lambda v: v["link"]),
        Column("training", "training", lambda v: v["training"]),
        Column("architecture", "architecture", lambda v: v["architecture"]),
        Column("extra_data", "extra data", lambda v: {True: "☑", False: "×"}.get(v["extra_data"], "")),
        Column("venue", "venue", lambda v: v["venue"]),
        Column("clean", f"clean {unit}", paper("clean", "clean_paper")),
        Column("aa", aa_title, lambda v: "" if v["aa"] is None and v["aa_paper"] is None else
               _with_paper(c(v["aa"]), c(v["aa_paper"])) + (f" ({v['aa_n']})" if v["aa_n"] else "")),
        Column("best", f"best known robust {unit}", lambda v: _num(c(v["best"])) if any_external else ""),
        Column("unreliable", "AA potentially unreliable",
               lambda v: {True: "☑", False: "×"}.get(v["unreliable"], "")),
        Column("pgd", f"{pgd} {unit} (sound)", paper("pgd", "pgd_reported_on_sound")),
        Column("pgd_paper_protocol", f"{pgd_paper} {unit} (paper protocol)",
               paper("pgd_paper_protocol", "pgd_reported_on_paper_protocol")),
        Column("corruptions", f"corruptions {unit}", lambda v: _num(c(v["corruptions"]))),
        Column("mce", "mCE", lambda v: _with_paper(v["mce"], v["mce_paper"])),
        Column("mce_normalized", "mCE (AlexNet=100)", lambda v: _num(v["mce_normalized"])),
        Column("real", f"ReaL {unit}", paper("real", "real_paper")),
        Column("sd_clean", "class SD clean", lambda v: _with_paper(v["sd_clean"], v["sd_clean_paper"])),
        Column("sd_pgd", f"class SD {pgd} (sound)",
               lambda v: _with_paper(v["sd_pgd"], v["sd_pgd_reported_on_sound"])),
        Column("sd_pgd_paper_protocol", f"class SD {pgd_paper} (paper protocol)",
               lambda v: _with_paper(v["sd_pgd_paper_protocol"], v["sd_pgd_reported_on_paper_protocol"])),
        Column("worst_clean", "worst class clean" + (" acc" if acc else ""), lambda v: _num(c(v["worst_clean"]))),
        Column("worst_pgd", f"worst class {pgd}" + (" acc" if acc else "") + " (sound)",
               lambda v: _num(c(v["worst_pgd"]))),
        Column("masking", "masking checks", _masking),
    ]


def sort_key(v: Mapping[str, Any]) -> tuple:
    """RobustBench order: best known robust accuracy (its ``external``, else AutoAttack's; for corruptions its
    ``corruptions_acc``) (desc), then clean accuracy (desc); no robust number sorts last."""
    acc = v.get("sort_acc", v["aa_acc"])
    return (0 if acc is not None else 1, -(acc or 0.0), -(v["clean_acc"] if v["clean_acc"] is not None else -1.0),
            v["model"])


SORT_KEYS: dict[str, Callable[[Mapping[str, Any]], tuple]] = {
    "robustbench": sort_key,
    "clean": lambda v: (v["clean"] is None, v["clean"] if v["clean"] is not None else 0.0, v["model"]),
    "pgd": lambda v: (v["pgd"] is None, v["pgd"] if v["pgd"] is not None else 0.0, v["model"]),
    "mce": lambda v: (v["mce"] is None, v["mce"] if v["mce"] is not None else 0.0, v["model"]),
    "sd": lambda v: (v["sd_pgd"] is None, v["sd_pgd"] if v["sd_pgd"] is not None else 0.0, v["model"]),
    "name": lambda v: (v["model"],),
}
# Where always shown, even when empty.
ALWAYS_SHOWN = ("rank", "model", "clean")
# RobustBench's descriptive columns, left out of a board of only this project's models when every row has the
# same value there (e.g. venue "N/A" everywhere).
DESCRIPTIVE = ("paper", "extra_data", "venue")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    keys: list[str]  # model key per row, in order
    links: list[list[str | None]] = field(default_factory=list)  # per cell: the URL it links to, or None
    footnotes: list[tuple[str, str]] = field(default_factory=list)  # (model key, footnote as plain text)
    group: str = ""  # "<dataset>, <threat model>" of its models


def all_row_values(infos: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """:func:`row_values` plus :func:`robustbench_values` for every model; a model_info whose values cannot be
    read is a :class:`UserError` naming it."""
    out = []
    for key, info in infos:
        try:
            base = row_values(key, info)
            out.append({**base, **robustbench_values(key, info, base)})
        except (TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"model_info of '{key}' has a value of the wrong type ({exc}): rewrite it with rbla "
                            "evaluate or fix that value") from None
    return out


def build_table(infos: Sequence[tuple[str, Mapping[str, Any]]], sort: str = "robustbench", metric: str = "err"
                ) -> Table:
    """Rows (sorted, ranked) and the columns anyone has a value for."""
    if sort not in SORT_KEYS:
        raise UserError(f"unknown sort '{sort}': use one of {', '.join(SORT_KEYS)}")
    if metric not in METRICS:
        raise UserError(f"unknown metric '{metric}': use one of {', '.join(METRICS)}")
    values = sorted(all_row_values(infos), key=SORT_KEYS[sort])
    for rank, v in enumerate(values, 1):
        v["rank"] = rank
    cols = [c for c in columns(values, metric) if c.key in ALWAYS_SHOWN or any(c.cell(v) for v in values)]
    if not any(v["published"] for v in values):
        cols = [c for c in cols if c.key not in DESCRIPTIVE or len({c.cell(v) for v in values}) > 1]
    return Table([c.title for c in cols], [[c.cell(v) for c in cols] for v in values], [v["model"] for v in values],
                 links=[[c.link(v) if c.link else None for c in cols] for v in values],
                 footnotes=[(v["model"], v["footnote"]) for v in values if v["footnote"]])


def _group_of(info: Mapping[str, Any]) -> tuple[str, str]:
    threat = threat_model_of(info)
    if threat is None and info.get("autoattack_acc") not in (None, ""):
        threat = "Linf"  # RobustBench's default threat model
    return dataset_of(info), threat or ""


def build_tables(infos: Sequence[tuple[str, Mapping[str, Any]]], sort: str = "robustbench", metric: str = "err"
                 ) -> list[Table]:
    """One :func:`build_table` per dataset and threat model (RobustBench's ``<dataset>/<threat_model>/``)."""
    groups: dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]] = {}
    for key, info in infos:
        groups.setdefault(_group_of(info), []).append((key, info))
    order = {t: i for i, t in enumerate(THREAT_MODELS)}
    tables = []
    for (dataset, threat), members in sorted(groups.items(), key=lambda g: (g[0][0], order.get(g[0][1], 99),
                                                                             g[0][1])):
        table = build_table(members, sort=sort, metric=metric)
        table.group = ", ".join(x for x in (dataset, threat) if x)
        tables.append(table)
    return tables


def _notes(infos: Sequence[tuple[str, Mapping[str, Any]]], metric: str = "err") -> list[str]:
    eps = sorted({str(i.get("eps")) for _, i in infos if i.get("eps")})
    what = "Accuracies" if metric == "acc" else "Errors"
    notes = [f"{what} in %; eps = {', '.join(eps) or '?'} in {PIXEL_SPACE}; attacks target the K-way "
             "classifier (first K logits)."]
    notes.append("Sorted like RobustBench: best known robust accuracy (RobustBench's 'external' where given, else "
                 "AutoAttack's), then clean accuracy; models without either last. 'extra data': trained with data "
                 "beyond the dataset's training set; 'AA potentially unreliable': RobustBench's flag.")
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


def _tables(table: Table | Sequence[Table]) -> list[Table]:
    return [table] if isinstance(table, Table) else list(table)


def to_markdown(table: Table | Sequence[Table], infos: Sequence[tuple[str, Mapping[str, Any]]] = (),
                title: str = "Leaderboard", metric: str = "err") -> str:
    """Markdown: the title, one table per group (with a heading when there are several), then the notes and the
    models' footnotes."""
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def cell(text: str, link: str | None) -> str:
        return f"[{esc(text)}]({link})" if link and text else esc(text)

    tables = _tables(table)
    lines = [f"# {title}", ""]
    for t in tables:
        if len(tables) > 1:
            lines += [f"## {t.group or 'other'}", ""]
        links = t.links or [[None] * len(t.header) for _ in t.rows]
        lines += ["| " + " | ".join(t.header) + " |",
                  "|" + "|".join("---" if h in ("model", "paper", "training", "architecture", "venue") else "---:"
                                 for h in t.header) + "|"]
        lines += ["| " + " | ".join(cell(c, u) for c, u in zip(row, row_links)) + " |"
                  for row, row_links in zip(t.rows, links)]
        lines.append("")
    lines += [f"- {n}" for n in _notes(infos, metric)]
    footnotes = [f for t in tables for f in t.footnotes]
    if footnotes:
        lines += ["", "Footnotes:", ""] + [f"- {esc(key)}: {esc(text)}" for key, text in footnotes]
    return "\n".join(lines) + "\n"


def to_html(table: Table | Sequence[Table], infos: Sequence[tuple[str, Mapping[str, Any]]] = (),
            title: str = "Leaderboard", metric: str = "err") -> str:
    """A self-contained HTML page (inline CSS, no scripts); links only to http(s) URLs; each model's footnote sits
    under its paper's name, as on RobustBench's site."""
    tables = _tables(table)
    parts = []
    for t in tables:
        notes = dict(t.footnotes)
        col = {h: i for i, h in enumerate(t.header)}
        links = t.links or [[None] * len(t.header) for _ in t.rows]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
        body = []
        for key, row, row_links in zip(t.keys, t.rows, links):
            cells = []
            for i, (text, link) in enumerate(zip(row, row_links)):
                inner = html.escape(text)
                if link and text:
                    inner = f'<a href="{html.escape(link, quote=True)}">{inner}</a>'
                where = col.get("paper", col.get("model"))
                if i == where and notes.get(key):
                    inner += f'<br><span class="note">{html.escape(notes[key])}</span>'
                cells.append(f"<td>{inner}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        heading = f"<h2>{html.escape(t.group or 'other')}</h2>\n" if len(tables) > 1 else ""
        parts.append(f"{heading}<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
                     + "\n</tbody>\n</table>")
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in _notes(infos, metric))
    tables_html = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f0f0f0; }}
td {{ font-variant-numeric: tabular-nums; }}
.note {{ font-size: smaller; color: #555; }}
tr:nth-child(even) {{ background: #fafafa; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
{tables_html}
<ul>{notes_html}</ul>
</body></html>
"""


def summary_line(key: str, info: Mapping[str, Any]) -> str:
    """One line of a model's headline numbers, as its evaluators declare them (``Evaluator.headline``)."""
    from .model_info import headline_values

    shown = [h.text() for h in headline_values((info.get("labelaug") or {}).get("results") or {}).values() if h.show]
    return f"{key}: " + " | ".join(shown)


__all__ = ["METRICS", "SORT_KEYS", "Table", "all_row_values", "build_table", "build_tables", "robustbench_values",
           "row_values", "sort_key", "summary_line", "to_html", "to_markdown"]
