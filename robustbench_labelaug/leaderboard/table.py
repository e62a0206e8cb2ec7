"""Leaderboard tables (markdown and a self-contained HTML page) from model_info dicts.

RobustBench's published model_info files and this project's measured ones mix in one table. Models are grouped
by dataset and threat model (RobustBench's ``<dataset>/<threat_model>/`` folders; ours say theirs in
``labelaug.threat_model``; a file with neither counts as L-inf, RobustBench's default) and each group is ranked by
the strongest attack each model has, with a rank interval (:mod:`.ranking`: RobustBench's best known robust
accuracy > AutoAttack > PGD (sound) > PGD (paper protocol), ties on the next of these, never on clean error).
Columns follow RobustBench's table (rank, paper with link, extra data, architecture, venue, best known robust
accuracy, "potentially unreliable"); the measured columns are the headlines the evaluators declare
(``Evaluator.headline`` -> ``labelaug.measured.headlines``: key, label, unit, protocol), so a new evaluator's numbers
get their columns without a change here; RobustBench's own files give theirs under the same keys
(``model_info.ROBUSTBENCH_HEADLINES``). Numbers are errors in percent (``metric="err"``, the paper's convention) or
accuracies (``metric="acc"``, RobustBench's: every ``*_error`` headline as 100 - error); where the paper reports a
number for the same metric it is shown beside the measured one, ``"26.70 (paper) / 31.20"``. Columns nobody has a
value for are left out.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from ..mdtext import md_link, md_text
from ..results import keys
from ..results.measured import Measured
from ..results.model_info import (
    PIXEL_SPACE,
    dataset_of,
    headline_sources,
    number,
    stored_headlines,
    threat_model_of,
)
from ..results.vocab import DEFAULT_THREAT_MODEL, THREAT_MODELS, ThreatModel
from .ranking import RANKING_NOTE, rank_intervals, ranking_label, ranking_measure, robust_sort_key

Cell = str


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    cell: Callable[[Mapping[str, Any]], Cell]
    link: Callable[[Mapping[str, Any]], str | None] | None = None  # the cell links there (HTML, markdown)
    unit: str = ""  # shown in the header: "clean err (%)"
    value: Callable[[Mapping[str, Any]], Any] | None = None  # the cell's number, what the HTML page sorts by
    hover: Callable[[Mapping[str, Any]], str | None] | None = None  # the HTML cell's title (full text on hover)
    secondary: bool = False  # the HTML page shows it in a model's details, not as a column of the main view


METRICS = ("err", "acc")


def _num(value: Any) -> str:
    return "" if value is None else f"{float(value):.2f}"


def _with_paper(measured: Any, paper: Any) -> str:
    if paper is None:
        return _num(measured)
    if measured is None:
        return f"{_num(paper)} (paper)"
    return f"{_num(paper)} (paper) / {_num(measured)}"


# The paper's numbers (``labelaug.reported``, this package's names) sit beside the headline of the same key; these
# sit beside the first of the listed headlines the row has (the paper's PGD number beside the run that follows the
# paper's protocol, when there is one). Class-wise reported blocks: ``classwise.<name>.sd`` beside these keys.
REPORTED_BESIDE: dict[str, tuple[str, ...]] = {keys.PGD_ERROR: (keys.PGD_PAPER_ERROR, keys.PGD_ERROR)}
REPORTED_CLASSWISE_SD: dict[str, tuple[str, ...]] = {
    keys.PGD: (keys.class_sd(keys.PGD_PAPER), keys.class_sd(keys.PGD))}


def is_column(h: Measured) -> bool:
    """Whether a declared headline gets a leaderboard column: a number in % (errors, class SD, mCE) or a value the
    summary line shows; counts and settings (``unit`` ``""``, not shown) are details of their result."""
    return h.show or h.unit == "%"


def restates(row: Mapping[str, Any], key: str) -> bool:
    """Whether a row's headline ``key`` (one the summary line leaves out) only repeats a shown number of the same
    result, e.g. the corruption error that equals the unnormalised mCE when every corruption has all severities."""
    h, source = row["headlines"][key], row.get("sources", {}).get(key)
    if h.show or source is None or h.value is None:
        return False
    def same(a: Any, b: Any) -> bool:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) if numbers else a == b

    return any(j != key and row["sources"].get(j) == source and other.show and other.unit == h.unit
               and same(other.value, h.value) for j, other in row["headlines"].items())


def is_error(h: Measured) -> bool:
    """An error rate in % (``results.keys.is_error``: ``*_error``, ``worst_class_*``, ``mce``; a class SD is the
    same for errors and accuracies and is never converted): shown as 100 - value with ``metric="acc"``."""
    return h.unit == "%" and keys.is_error(h.key)


def _paper_values(extra: Mapping[str, Any], heads: Mapping[str, Measured]) -> dict[str, Any]:
    """Headline key -> the paper's number for it (``labelaug.reported``)."""
    rep = extra.get("reported") or {}
    out: dict[str, Any] = {}

    def put(targets: Sequence[str], value: Any) -> None:
        target = next((t for t in targets if t in heads), None)
        if target is not None and value is not None:
            out.setdefault(target, value)

    for name, value in rep.items():
        if name != "classwise" and isinstance(value, (int, float)) and not isinstance(value, bool):
            put(REPORTED_BESIDE.get(name, (name,)), value)
    for name, block in (rep.get("classwise") or {}).items():
        if isinstance(block, Mapping):
            put(REPORTED_CLASSWISE_SD.get(name, (f"class_sd_{name}",)), block.get("sd"))
    return out


def row_values(key: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """A row's values: descriptive fields plus ``headlines`` (key -> :class:`Measured`, as the evaluators declared
    them, stored in ``labelaug.measured.headlines``; RobustBench's own fields for its files) and ``reported``
    (headline key -> the paper's number)."""
    extra = info.get("labelaug") or {}
    heads = stored_headlines(info)
    sources = headline_sources(info)
    clean_acc = number(info.get("clean_acc"))
    return {
        "model": key,
        "training": extra.get("training") or "",
        "architecture": info.get("architecture") or "",
        "eps": info.get("eps") or "",
        "headlines": heads,
        "sources": {k: v for k, v in sources.items() if v is not None},  # headline key -> result id
        "reported": _paper_values(extra, heads),
        "clean_acc": clean_acc,
        "aa_acc": number(info.get("autoattack_acc")),
    }


def robustbench_values(key: str, info: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """RobustBench's own columns for a row (``base``: :func:`row_values`): paper name and link, venue, extra data,
    footnote, ``external`` / ``unreliable``, and the accuracy its leaderboard sorts by."""
    external = number(info.get("external"))
    best = external if external is not None else base.get("aa_acc")
    threat = threat_model_of(info) or (DEFAULT_THREAT_MODEL if base.get("aa_acc") is not None else None)
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
    text = text.replace("\\(", "").replace("\\)", "").replace("\\ell_{\\infty}", ThreatModel.LINF)
    return html.unescape(" ".join(text.split()))


_NUMBER = re.compile(r"[-=]?\d+(?:\.\d+)?")


def _title(labels: Sequence[str], others: Sequence[str] = ()) -> tuple[str, bool]:
    """A column's title from the labels our rows declare (``others``: RobustBench's files' labels for the key), and
    whether rows differ. One label is the title; labels that differ only in numbers (``PGD-40 err (sound)`` /
    ``PGD-10 err (sound)``, ``AA err (n=120)`` / ``AA err``) give the label without its numbers (``PGD err
    (sound)``, ``AA err (n)``) and each of our cells names its own; else all labels, joined."""
    distinct = list(dict.fromkeys([*labels, *others]))
    if len(distinct) == 1:
        return distinct[0], False
    ours = list(dict.fromkeys(labels)) or distinct
    strip_all = len(ours) < len(distinct)  # a RobustBench row's label differs: drop our numbers everywhere
    words = [label.split() for label in ours]
    if len({len(w) for w in words}) == 1:
        merged = []
        for column in zip(*words):
            stripped = {_NUMBER.sub("", w) for w in column}
            if len(stripped) > 1:
                break
            merged.append(column[0] if len(set(column)) == 1 and not strip_all else stripped.pop())
        else:
            return " ".join(merged), True
    return " / ".join(ours), True


def _own_words(label: str, title: str) -> str:
    """The words of a row's label that its column's title leaves out (``PGD-40``, ``(n=120)``), for its cell."""
    words, shared = label.split(), title.split()
    if len(words) != len(shared):
        return ""
    own = [w for w, t in zip(words, shared) if w != t]
    return " ".join(w if w.startswith("(") else f"({w})" for w in own)


def _acc_label(label: str) -> str:
    if label.startswith("mCE"):
        return "mean corruption acc" + label[3:]
    words = label.split()
    return " ".join("acc" if w == "err" else w for w in words) if "err" in words else f"{label} acc"


def _cell(h: Measured | None, paper: Any, convert: Callable[[Any], Any], own: str) -> str:
    if h is None or h.value is None:
        return "" if paper is None else f"{_num(convert(paper))} (paper)"
    value = h.value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = _with_paper(convert(value), None if paper is None else convert(paper)) if h.unit == "%" else \
            (f"{value:.2f}" if isinstance(value, float) else str(value))
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(v) for v in value)
    else:
        text = str(value)
    if h.precision:  # measured with an opt-in bf16/fp16 forward pass
        text = f"{text} [{h.precision}]"
    return f"{text} {own}".strip()


def headline_columns(rows: Sequence[Mapping[str, Any]], metric: str = "err") -> list[Column]:
    """One column per headline key any row declares as a column (:func:`is_column`), in the order the rows'
    evaluators declare them; the title is the declared label (see :func:`_title`), with ``err`` -> ``acc`` for
    error rates when ``metric="acc"``."""
    acc = metric == "acc"
    ours = [r for r in rows if not r.get("published")]
    keys: dict[str, None] = {}
    for r in ours + [r for r in rows if r.get("published")]:
        for k, h in r["headlines"].items():
            if is_column(h):
                keys.setdefault(k)
    # a column that in every row only repeats a shown number of the same result is left out
    keys = {k: None for k in keys if not all(restates(r, k) for r in rows if k in r["headlines"])}
    cols = []
    for k in keys:
        declared = [r["headlines"][k] for r in ours if k in r["headlines"]]
        published = [r["headlines"][k] for r in rows if r.get("published") and k in r["headlines"]]
        title, differ = _title([h.label for h in declared], [h.label for h in published])
        error = is_error((declared or published)[0])
        convert = (lambda v: None if v is None else 100.0 - float(v)) if acc and error else (lambda v: v)

        def cell(v: Mapping[str, Any], k=k, title=title, differ=differ, convert=convert) -> str:
            h = v["headlines"].get(k)
            own = _own_words(h.label, title) if differ and h is not None and not v.get("published") else ""
            return _cell(h, v["reported"].get(k), convert, own)

        def value(v: Mapping[str, Any], k=k, convert=convert) -> Any:
            h = v["headlines"].get(k)
            if h is None or isinstance(h.value, bool) or not isinstance(h.value, (int, float)):
                return None if h is None or h.value is None else _masking_fraction(h.value)
            return convert(h.value) if h.unit == "%" else h.value

        unit = (declared or published)[0].unit
        secondary = not any(h.show for h in declared + published)  # not in the summary line: a detail on the page
        cols.append(Column(k, _acc_label(title) if acc and error else title, cell, unit=unit, value=value,
                           secondary=secondary))
    return cols


def _masking_fraction(value: Any) -> float | None:
    """``"3/4 passed ..."`` -> 0.75 (a count-of-passes cell sorts by its share); anything else: None."""
    m = re.match(r"\s*(\d+)/(\d+)\b", str(value))
    return int(m.group(1)) / int(m.group(2)) if m and int(m.group(2)) else None


def columns(rows: Sequence[Mapping[str, Any]], metric: str = "err") -> list[Column]:
    """The table's columns: RobustBench's descriptive ones, then one per declared headline
    (:func:`headline_columns`), then RobustBench's best known robust accuracy and its "potentially unreliable"
    flag; ``metric`` ``"err"`` shows errors, ``"acc"`` accuracies (100 - error) for every error column."""
    acc = metric == "acc"
    unit = "acc" if acc else "err"
    any_external = any(v.get("external") is not None for v in rows)
    return [
        Column("rank", "rank", _rank_cell, value=lambda v: v["rank"]),
        Column("model", "model", lambda v: v["model"]),
        Column("paper", "paper", lambda v: v["paper"], link=lambda v: v["link"]),
        Column("training", "training", lambda v: v["training"]),
        Column("architecture", "architecture", lambda v: v["architecture"]),
        Column("extra_data", "extra data", lambda v: {True: "☑", False: "×"}.get(v["extra_data"], "")),
        Column("venue", "venue", lambda v: v["venue"]),
        Column("ranked_by", "ranked by", lambda v: v.get("ranked_by") or "",  # beside the numbers it names
               hover=lambda v: v.get("ranked_by_protocol") or None),
        *headline_columns(rows, metric),
        Column("best", f"best known robust {unit}",
               lambda v: _num(None if v["best"] is None else (100.0 - v["best"] if acc else v["best"]))
               if any_external else "", unit="%",
               value=lambda v: None if v["best"] is None or not any_external else
               (100.0 - v["best"] if acc else v["best"])),
        Column("unreliable", "AA potentially unreliable",
               lambda v: {True: "☑", False: "×"}.get(v["unreliable"], "")),
    ]


def _rank_cell(v: Mapping[str, Any]) -> str:
    """``3`` or, with a rank interval (:mod:`.ranking`), ``3 (2–5)``."""
    interval = v.get("rank_interval")
    return str(v["rank"]) if not interval else f"{v['rank']} ({interval[0]}–{interval[1]})"


def sort_key(v: Mapping[str, Any]) -> tuple:
    """The default order (:func:`.ranking.robust_sort_key`): by the strongest attack each model has (RobustBench's
    best known robust accuracy > AutoAttack > PGD (sound) > PGD (paper protocol); corruption boards: the
    corruption error), ties on the next of these, never on clean error; no robust number sorts last."""
    return robust_sort_key(v)


def by_headline(key: str) -> Callable[[Mapping[str, Any]], tuple]:
    """Sort by a headline number (lowest first; rows without it last)."""
    def sort(v: Mapping[str, Any]) -> tuple:
        h = v["headlines"].get(key)
        value = h.value if h is not None and isinstance(h.value, (int, float)) else None
        return (value is None, value if value is not None else 0.0, v["model"])

    return sort


# ``rbla leaderboard --sort`` names -> the headline key they sort by
PAPER_EPS_KEY = keys.eps_pixel(keys.PGD_PAPER)
SORT_HEADLINES = {"clean": keys.CLEAN_ERROR, "pgd": keys.PGD_ERROR, "mce": keys.MCE, "sd": keys.class_sd(keys.PGD)}
SORT_KEYS: dict[str, Callable[[Mapping[str, Any]], tuple]] = {
    "robustbench": sort_key,
    **{name: by_headline(key) for name, key in SORT_HEADLINES.items()},
    "name": lambda v: (v["model"],),
}
TEXT_COLUMNS = ("model", "ranked by", "paper", "training", "architecture", "venue")  # left-aligned in markdown
DEFAULT_SORT = "robustbench"  # the ranking with rank intervals (rbla leaderboard --sort's default)
# Where always shown, even when empty.
ALWAYS_SHOWN = ("rank", "model")
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
    units: list[str] = field(default_factory=list)  # per column: its unit ("%") or ""
    values: list[list[Any]] = field(default_factory=list)  # per cell: its number (None: sort by the text)
    column_keys: list[str] = field(default_factory=list)  # per column: its key (headline key for measured ones)
    hovers: list[list[str | None]] = field(default_factory=list)  # per cell: its full text on hover (HTML), or None
    secondary: list[bool] = field(default_factory=list)  # per column: in the page's details, not its main view

    def alignment(self) -> list[str]:
        """The markdown alignment row's cells: text columns left (``---``), numbers right (``---:``)."""
        return ["---" if h in TEXT_COLUMNS else "---:" for h in self.header]

    def titles(self) -> list[str]:
        """The headers with their units: ``clean err (%)``."""
        units = self.units or [""] * len(self.header)
        return [f"{h} ({u})" if u else h for h, u in zip(self.header, units)]


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
    intervals = rank_intervals(values) if sort == DEFAULT_SORT else [None] * len(values)
    for rank, (v, interval) in enumerate(zip(values, intervals), 1):
        v["rank"], v["rank_interval"] = rank, interval
        measure = ranking_measure(v)[0] if sort == DEFAULT_SORT else None
        v["ranked_by"] = measure.name if measure is not None else ""
        v["ranked_by_protocol"] = ranking_label(v) if measure is not None else ""
    cols = [c for c in columns(values, metric) if c.key in ALWAYS_SHOWN or any(c.cell(v) for v in values)]
    if not any(v["published"] for v in values):
        cols = [c for c in cols if c.key not in DESCRIPTIVE or len({c.cell(v) for v in values}) > 1]
    return Table([c.title for c in cols], [[c.cell(v) for c in cols] for v in values], [v["model"] for v in values],
                 links=[[c.link(v) if c.link else None for c in cols] for v in values],
                 footnotes=[(v["model"], v["footnote"]) for v in values if v["footnote"]],
                 units=[c.unit for c in cols], values=[[c.value(v) if c.value else None for c in cols]
                                                       for v in values],
                 column_keys=[c.key for c in cols],
                 hovers=[[c.hover(v) if c.hover else None for c in cols] for v in values],
                 secondary=[c.secondary for c in cols])


def _group_of(info: Mapping[str, Any]) -> tuple[str, str]:
    threat = threat_model_of(info)
    if threat is None and info.get("autoattack_acc") not in (None, ""):
        threat = DEFAULT_THREAT_MODEL  # RobustBench's default threat model
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


def leaderboard_notes(infos: Sequence[tuple[str, Mapping[str, Any]]], metric: str = "err") -> list[str]:
    eps = sorted({str(i.get("eps")) for _, i in infos if i.get("eps")})
    what = "Accuracies" if metric == "acc" else "Errors"
    notes = [f"{what} in %; eps = {', '.join(eps) or '?'} in {PIXEL_SPACE}; attacks target the K-way "
             "classifier (first K logits)."]
    notes.append(RANKING_NOTE + " 'extra data': trained with data beyond the dataset's training set; 'AA "
                 "potentially unreliable': RobustBench's flag.")
    notes.append("PGD 'sound': the K-way classifier attacked with true labels, pixel-space eps and clipping to "
                 "[0,1]; 'paper protocol': the authors' evaluation code reproduced, for comparison with their "
                 "numbers. 'X (paper) / Y': the paper's number, then the measured one.")
    paper_eps = sorted({f"{float(e):.4g}" for _, i in infos
                        if (e := ((i.get("labelaug") or {}).get("measured") or {}).get(PAPER_EPS_KEY))})
    if paper_eps:
        notes.append(f"The paper protocol's eps is in normalised units; in pixel space it is {', '.join(paper_eps)} "
                     "(the largest channel's eps * std).")
    if metric == "acc":
        notes.append("mean corruption acc is 100 - the unnormalised mean corruption error (the paper's mCE); class "
                     "SD is the population SD of the per-class errors (the same for accuracies); worst class is "
                     "the lowest per-class accuracy.")
    else:
        notes.append("mCE is the unnormalised mean corruption error (the paper's); class SD is the population SD "
                     "of the per-class errors; worst class is the highest per-class error.")
    return notes


def as_tables(table: Table | Sequence[Table]) -> list[Table]:
    return [table] if isinstance(table, Table) else list(table)


def to_markdown(table: Table | Sequence[Table], infos: Sequence[tuple[str, Mapping[str, Any]]] = (),
                title: str = "Leaderboard", metric: str = "err") -> str:
    """Markdown: the title, one table per group (with a heading when there are several), then the notes and the
    models' footnotes."""
    tables = as_tables(table)  # every value from the files is escaped (mdtext.md_text): no raw HTML reaches a renderer
    lines = [f"# {md_text(title)}", ""]
    for t in tables:
        if len(tables) > 1:
            lines += [f"## {md_text(t.group or 'other')}", ""]
        links = t.links or [[None] * len(t.header) for _ in t.rows]
        lines += ["| " + " | ".join(md_text(h) for h in t.titles()) + " |",
                  "|" + "|".join(t.alignment()) + "|"]
        lines += ["| " + " | ".join(md_link(c, u) for c, u in zip(row, row_links)) + " |"
                  for row, row_links in zip(t.rows, links)]
        lines.append("")
    lines += [f"- {md_text(n)}" for n in leaderboard_notes(infos, metric)]
    footnotes = [f for t in tables for f in t.footnotes]
    if footnotes:
        lines += ["", "Footnotes:", ""] + [f"- {md_text(key)}: {md_text(text)}" for key, text in footnotes]
    return "\n".join(lines) + "\n"


def summary_line(key: str, info: Mapping[str, Any]) -> str:
    """One line of a model's headline numbers, as its evaluators declare them (``Evaluator.headline``, stored in
    ``labelaug.measured.headlines``): the ones they mark ``show``."""
    return f"{key}: " + " | ".join(h.text() for h in stored_headlines(info).values() if h.show)


__all__ = ["METRICS", "SORT_HEADLINES", "SORT_KEYS", "Table", "all_row_values", "build_table", "build_tables",
           "by_headline", "columns", "headline_columns", "is_column", "is_error", "robustbench_values", "row_values",
           "sort_key", "summary_line", "to_markdown", "as_tables", "leaderboard_notes"]
