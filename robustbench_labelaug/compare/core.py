"""``compare(a, b)``: is B better than A, class by class, on the worst class, and is it significant?

Evaluators are paired by what they measured (:func:`pair_results`: the evaluator and its settings, not only the
result id, so ``pgd`` from ``benchmark()`` pairs with ``pgd40_sound`` of a config when their settings agree); the
comparison says which results it paired and which it could not, and why. For every pair (per-example files, see
:mod:`.files`): per-class B - A error differences with Newcombe's score interval for paired proportions (honest at
small counts) and an exact McNemar test per class (Holm-adjusted over the classes), and the differences in class
mean error, class SD and worst-class error with paired stratified-bootstrap CIs (written only where every class
has :data:`.stats.MIN_BOOTSTRAP_N` examples); the worst class named; one verdict line. With several evaluations
per side (seeds: ``rbla compare A_seed*.json -- B_seed*.json``) the seeds are pooled with the test examples in one
two-level bootstrap (:mod:`robustbench_labelaug.stats`: seeds per side, then examples within class), which gives
the verdict, the class mean / SD / worst-class differences and the per-class ones; each seed is held to the same
pairing and refusal rules as the first pair, and the between-seed spread is reported too. Evaluations of different data
(dataset, split, data fingerprint, preprocessing) or of different examples are refused, naming the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_savefig, names_difference
from ..mdtext import md_code, md_text
from ..results import keys
from ..results.vocab import Protocol
from ..stats import ArmOutcomes, bootstrap_draws, class_difference, difference
from ..stats import paired as stats
from .files import EvaluatedModel, load_evaluated

# settings that do not define what is measured: the run's duration, the seed of an attack's random start
IGNORED_SETTINGS = ("wall_seconds", "seed")
# a dataset spec's keys compared in this order (the rest follow sorted); data_dir only where neither side records
# a data fingerprint (the same files may live in two folders)
DATA_KEY_ORDER = ("name", "split")


@dataclass
class EvaluatorComparison:
    """One shared evaluator: the paired analysis of the first evaluation of each side, plus the seeds' spread."""

    id: str
    label: str                       # what ran, e.g. "PGD-40 (sound)"
    class_names: list[str]
    n: np.ndarray                    # examples per class
    boot: dict[str, Any]             # stats.paired_bootstrap (class mean / SD / worst class)
    tests: dict[str, np.ndarray]     # stats.per_class_tests
    seeds: dict[str, Any] = field(default_factory=dict)  # statistic -> stats.seed_spread (several per side)
    alpha: float = 0.05
    class_ci: list = field(default_factory=list)  # per class: Newcombe's interval of B - A (pp), None: no examples
    a_id: str = ""                   # the result ids paired (they differ where the settings matched, not the ids)
    b_id: str = ""
    pooled: dict[str, Any] | None = None  # several seeds on a side: the two-level bootstrap over all of them

    def _errors(self, side: str) -> np.ndarray:
        source = self.pooled if self.pooled is not None else self.boot
        return source["a_error" if side == "a" else "b_error"]

    def worst_class(self, side: str) -> str:
        return self.class_names[int(np.nanargmax(self._errors(side)))]

    def verdict(self, a_name: str = "A", b_name: str = "B") -> str:
        """One line: B's worst-class error against A's, with its CI (paired, or pooled over the seeds of each
        side), significant or not."""
        s = (self.pooled or self.boot)["summary"]["worst"]
        diff, ci = s["diff"], s["ci"]
        level = round(100 * self.boot["level"])
        if abs(diff) < 1e-9:
            amount = "equal to"
        else:
            amount = f"{abs(diff):.1f} points {'lower' if diff < 0 else 'higher'} than"
        if ci:
            pooled = "" if self.pooled is None else (f", pooled over {self.pooled['n_seeds'][0]} + "
                                                     f"{self.pooled['n_seeds'][1]} seeds")
            ci_text = f"{level} % CI [{ci[0]:.1f}, {ci[1]:.1f}]{pooled}"
            word = "significant" if stats.significant(ci) else "not significant"
        else:
            ci_text, word = f"no CI ({s.get('why') or 'none computed'})", "undetermined"
        return (f"{b_name}'s worst-class {self.label} error ({self.worst_class('b')}: {s['b']:.1f} %) is {amount} "
                f"{a_name}'s ({self.worst_class('a')}: {s['a']:.1f} %), {ci_text}: {word}")

    def to_frame(self):
        """pandas DataFrame, one row per class: name, n, A and B error (%), B - A, its CI, McNemar p, Holm p. Pooled
        over seeds: the seed-averaged errors, the two-level bootstrap's interval, no per-class test (McNemar pairs
        one model with one; NaN) and ``significant`` where the interval excludes 0."""
        import pandas as pd

        if self.pooled is not None:
            p = self.pooled
            ci = p["class_ci"]
            return pd.DataFrame({
                "name": self.class_names, "n": self.n, "a_error": p["a_error"], "b_error": p["b_error"],
                "diff": p["diff"], "ci_low": [c[0] if c else np.nan for c in ci],
                "ci_high": [c[1] if c else np.nan for c in ci], "a_only": np.nan, "b_only": np.nan,
                "p_mcnemar": np.nan, "p_holm": np.nan,
                "significant": [bool(stats.significant(c)) for c in ci]}, index=pd.RangeIndex(len(self.n),
                                                                                             name="class"))
        ci = self.class_ci or [None] * len(self.n)
        return pd.DataFrame({
            "name": self.class_names, "n": self.n, "a_error": self.boot["a_error"], "b_error": self.boot["b_error"],
            "diff": self.boot["diff"], "ci_low": [c[0] if c else np.nan for c in ci],
            "ci_high": [c[1] if c else np.nan for c in ci], "a_only": self.tests["a_only"],
            "b_only": self.tests["b_only"], "p_mcnemar": self.tests["p"], "p_holm": self.tests["p_holm"],
            "significant": self.tests["p_holm"] < self.alpha}, index=pd.RangeIndex(len(self.n), name="class"))


@dataclass
class Comparison:
    """What :func:`compare` found: one :class:`EvaluatorComparison` per shared evaluator id."""

    a_name: str
    b_name: str
    evaluators: dict[str, EvaluatorComparison]
    a_folders: list[Path]
    b_folders: list[Path]
    skipped: dict[str, str] = field(default_factory=dict)  # evaluator id -> why it is not compared

    @property
    def verdicts(self) -> dict[str, str]:
        return {k: e.verdict(self.a_name, self.b_name) for k, e in self.evaluators.items()}

    def markdown(self) -> str:
        """Markdown: per evaluator the verdict, the summary differences and the per-class table. Every name and
        text from the files (models, classes, ids) is escaped (:func:`~robustbench_labelaug.mdtext.md_text`)."""
        a_name, b_name = md_text(self.a_name), md_text(self.b_name)
        lines = [f"# {b_name} vs {a_name} (B - A, percentage points of error)", ""]
        for rid, e in self.evaluators.items():
            level = round(100 * e.boot["level"])
            paired = "" if e.a_id == e.b_id else f" ({a_name}'s {md_code(e.a_id)} with {b_name}'s {md_code(e.b_id)})"
            lines += [f"## {md_text(rid)}: {md_text(e.label)}{paired}", "",
                      f"**{md_text(e.verdict(self.a_name, self.b_name))}**", ""]
            if e.pooled is not None:
                lines += [*_pooled_lines(e, a_name, b_name, level), ""]
                continue
            lines += [f"| statistic | {a_name} | {b_name} | B - A | {level} % CI (paired stratified "
                      "bootstrap) |", "|---|---:|---:|---:|---|"]
            for name, title in (("mean", "class mean error"), ("sd", "class SD"), ("worst", "worst-class error")):
                s = e.boot["summary"][name]
                extra = f" ({md_text(e.worst_class('a'))} / {md_text(e.worst_class('b'))})" if name == "worst" else ""
                lines.append(f"| {title}{extra} | {s['a']:.2f} | {s['b']:.2f} | {s['diff']:+.2f} | "
                             f"{_ci(s['ci'])}{' *' if stats.significant(s['ci']) else ''} |")
            if e.boot.get("no_ci"):
                lines += ["", f"No bootstrap CI: {md_text(e.boot['no_ci'])}."]
            else:
                notes = [f"No CI of the {name}: {md_text(s['why'])}." for name, s in e.boot["summary"].items()
                         if s.get("ci") is None and s.get("why")]
                lines += ["", *notes] if notes else []
            lines += ["", f"| class | n | {a_name} | {b_name} | B - A | {level} % CI (Newcombe) | "
                      "A-only wrong | B-only wrong | McNemar p | Holm p |",
                      "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
            f = e.to_frame()
            for _, row in f.iterrows():
                if row["n"] == 0:
                    continue
                star = " *" if row["significant"] else ""
                lines.append(f"| {md_text(row['name'])} | {int(row['n'])} | {row['a_error']:.1f} | {row['b_error']:.1f} | "
                             f"{row['diff']:+.1f} | {_ci([row['ci_low'], row['ci_high']])} | {int(row['a_only'])} | "
                             f"{int(row['b_only'])} | {row['p_mcnemar']:.3g} | {row['p_holm']:.3g}{star} |")
            if e.seeds:
                na, nb = len(e.seeds["mean"]["a"]["values"]), len(e.seeds["mean"]["b"]["values"])
                lines += ["", f"Across seeds ({na} for {a_name}, {nb} for {b_name}): mean ± SD over seeds, "
                          f"B - A with Welch's {level} % CI:", "",
                          f"| statistic | {a_name} | {b_name} | B - A | {level} % CI |",
                          "|---|---:|---:|---:|---|"]
                for name, title in (("mean", "class mean error"), ("sd", "class SD"), ("worst", "worst-class error")):
                    s = e.seeds[name]
                    lines.append(f"| {title} | {_pm(s['a'])} | {_pm(s['b'])} | {s['diff']:+.2f} | {_ci(s['ci'])} |")
            lines.append("")
        lines.append(f"`*`: significant at {100 * (1 - next(iter(self.evaluators.values())).boot['level']):.0f} % "
                     "(CI excludes 0) or Holm-adjusted McNemar p < 0.05." if self.evaluators else "")
        if self.skipped:
            lines += ["", "Not compared:"]
        for rid, why in self.skipped.items():
            lines.append(f"- {md_text(rid)}: not compared ({md_text(why)})")
        return "\n".join(lines).rstrip() + "\n"

    def plot(self, path: str | Path) -> Path:
        """Per-class B - A error differences with their CIs, one panel per evaluator (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = len(self.evaluators)
        fig, axes = plt.subplots(n, 1, figsize=(max(6.0, 0.45 * max(len(e.n) for e in self.evaluators.values())),
                                                2.8 * n), squeeze=False)
        for ax, (rid, e) in zip(axes[:, 0], self.evaluators.items()):
            keep = np.flatnonzero(e.n > 0)
            frame = e.to_frame()
            diff = frame["diff"].to_numpy()[keep]
            ci = frame[["ci_low", "ci_high"]].to_numpy()[keep]
            colours = ["tab:red" if s else "tab:blue" for s in frame["significant"].to_numpy()[keep]]
            ax.errorbar(np.arange(len(keep)), diff, yerr=[diff - ci[:, 0], ci[:, 1] - diff], fmt="none",
                        ecolor="grey", capsize=3)
            ax.scatter(np.arange(len(keep)), diff, c=colours, zorder=3)
            ax.axhline(0, color="black", lw=0.8)
            ax.set_xticks(np.arange(len(keep)), [e.class_names[c] for c in keep], rotation=90 if len(keep) > 20
                          else 0)
            ax.set_ylabel("B - A error (pp)")
            red = "CI excludes 0; seeds pooled" if e.pooled is not None else f"Holm p < {e.alpha}"
            ax.set_title(f"{rid}: {e.label} — {self.b_name} - {self.a_name} (red: {red})", fontsize=9)
        fig.tight_layout()
        try:
            return atomic_savefig(fig, path, dpi=120)  # a kill mid-write keeps the previous figure
        finally:
            plt.close(fig)


def _pooled_lines(e: EvaluatorComparison, a_name: str, b_name: str, level: int) -> list[str]:
    """The pooled comparison's tables: class mean / SD / worst-class error with the two-level bootstrap's interval
    and p, then per class the seed-averaged errors and their difference's interval."""
    p = e.pooled
    na, nb = p["n_seeds"]
    lines = [f"Pooled over {na} seed(s) of {a_name} and {nb} of {b_name} and the test examples: the two-level "
             f"bootstrap (seeds, then examples within class; {p['n_boot']} replicates, each statistic per model and "
             f"averaged over seeds; stats.bootstrap_draws).", "",
             f"| statistic | {a_name} | {b_name} | B - A | {level} % CI (two-level bootstrap) | p |",
             "|---|---:|---:|---:|---|---:|"]
    for name, title in (("mean", "class mean error"), ("sd", "class SD"), ("worst", "worst-class error")):
        s = p["summary"][name]
        lines.append(f"| {title} | {s['a']:.2f} | {s['b']:.2f} | {s['diff']:+.2f} | "
                     f"{_ci(s['ci'])}{' *' if stats.significant(s['ci']) else ''} | "
                     f"{'–' if s['p'] is None else format(s['p'], '.3g')} |")
    lines += [*(f"- {md_text(n)}" for n in p["notes"])]
    lines += ["", f"| class | n | {a_name} (seed mean) | {b_name} (seed mean) | B - A | {level} % CI (two-level "
              "bootstrap) |", "|---|---:|---:|---:|---:|---|"]
    for _, row in e.to_frame().iterrows():
        if row["n"] == 0:
            continue
        star = " *" if row["significant"] else ""
        lines.append(f"| {md_text(row['name'])} | {int(row['n'])} | {row['a_error']:.1f} | {row['b_error']:.1f} | "
                     f"{row['diff']:+.1f} | {_ci([row['ci_low'], row['ci_high']])}{star} |")
    if e.seeds:
        lines += ["", f"Across seeds: mean ± SD over seeds, B - A with Welch's {level} % CI (seeds only, the test "
                  "examples fixed):", "", f"| statistic | {a_name} | {b_name} | B - A | {level} % CI |",
                  "|---|---:|---:|---:|---|"]
        for name, title in (("mean", "class mean error"), ("sd", "class SD"), ("worst", "worst-class error")):
            s = e.seeds[name]
            lines.append(f"| {title} | {_pm(s['a'])} | {_pm(s['b'])} | {s['diff']:+.2f} | {_ci(s['ci'])} |")
    return lines


def _ci(ci) -> str:
    if ci is None or any(v is None or not np.isfinite(v) for v in ci):
        return "–"
    return f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def _pm(side: dict[str, Any]) -> str:
    return f"{side['mean']:.2f}" + (f" ± {side['sd']:.2f}" if side["sd"] is not None else "")


def result_label(result: dict[str, Any]) -> str:
    """What ran, in words, from the stored settings (e.g. ``PGD-10 (sound)``, ``AutoAttack (standard)``)."""
    settings = result.get("settings") or {}
    name = result.get("evaluator")
    if name == "pgd":
        return f"PGD-{settings.get('steps')} ({result.get('protocol') or settings.get('protocol') or Protocol.SOUND})"
    if name == "autoattack":
        return str(settings.get("attack") or "AutoAttack")
    return str(name)


def _settings(result: dict[str, Any]) -> dict[str, Any]:
    """What a result measured: its evaluator's settings less those that do not define the measurement; an
    ``n_examples`` of None (all of them) as the count it evaluated, so "all 360" and "360" are alike."""
    out = {k: v for k, v in (result.get("settings") or {}).items() if k not in IGNORED_SETTINGS}
    if "n_examples" in out and out["n_examples"] is None and isinstance(result.get("num_examples"), int):
        out["n_examples"] = result["num_examples"]
    return out


def _first_difference(x: dict[str, Any], y: dict[str, Any], order: Sequence[str] = ()) -> str | None:
    for key in [*order, *sorted((set(x) | set(y)) - set(order))]:
        if x.get(key) != y.get(key):
            return f"{key}: {x.get(key)!r} vs {y.get(key)!r}"
    return None


def measures_alike(ra: dict[str, Any], rb: dict[str, Any]) -> str | None:
    """None when results ``ra`` and ``rb`` measured the same thing (same evaluator, same settings), else the first
    difference in words."""
    if ra.get("evaluator") != rb.get("evaluator"):
        return f"evaluator: {ra.get('evaluator')!r} vs {rb.get('evaluator')!r}"
    return _first_difference(_settings(ra), _settings(rb))


def pair_results(a: EvaluatedModel, b: EvaluatedModel, a_name: str = "A", b_name: str = "B"
                 ) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Pair A's results with B's by what they measured: the same evaluator with the same settings
    (:func:`measures_alike`), the same id preferred, each result used once. Returns the ``(a_id, b_id)`` pairs and,
    for every result left unpaired (keyed ``A:<id>`` / ``B:<id>``), why: the closest result of the same evaluator
    on the other side and the first setting in which it differs."""
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    unpaired: dict[str, str] = {}
    for aid, ra in a.results.items():
        alike = [bid for bid, rb in b.results.items() if bid not in used and measures_alike(ra, rb) is None]
        if alike:
            bid = aid if aid in alike else alike[0]
            pairs.append((aid, bid))
            used.add(bid)
    paired_a = {aid for aid, _ in pairs}
    for side, own, other, taken in (("A", a, b, paired_a), ("B", b, a, used)):
        other_side = b_name if side == "A" else a_name
        for rid, r in own.results.items():
            if rid in taken:
                continue
            same = [(oid, measures_alike(r, ro)) for oid, ro in other.results.items()
                    if ro.get("evaluator") == r.get("evaluator")]
            if not same:
                unpaired[f"{side}:{rid}"] = f"{other_side} has no {r.get('evaluator')} result"
                continue
            oid, why = min(same, key=lambda t: (t[0] != rid, _count_differences(r, other.results[t[0]])))
            unpaired[f"{side}:{rid}"] = (f"{other_side}'s '{oid}' ran with different settings ({why})" if why else
                                         f"{other_side}'s '{oid}' is paired with another result")
    return pairs, unpaired


def _count_differences(ra: dict[str, Any], rb: dict[str, Any]) -> int:
    x, y = _settings(ra), _settings(rb)
    return sum(x.get(k) != y.get(k) for k in set(x) | set(y))


def data_difference(a: EvaluatedModel, aid: str, b: EvaluatedModel, bid: str) -> str | None:
    """The first difference between the data two results ran on, in words (None: the same as far as both
    record): the dataset's name, then its split, then the data fingerprint (the files' content), then the other
    settings of the dataset (crop_pct, input_size, ...; data_dir only where neither side records a fingerprint)."""
    da, db = dict(a.datasets.get(aid) or {}), dict(b.datasets.get(bid) or {})
    if not isinstance(a.datasets.get(aid), dict) or not isinstance(b.datasets.get(bid), dict):
        da, db = {"name": a.datasets.get(aid)}, {"name": b.datasets.get(bid)}  # only a name (or nothing) recorded
    for key in DATA_KEY_ORDER:
        if key in da and key in db and da[key] is not None and db[key] is not None and da[key] != db[key]:
            return f"dataset {key}: {da[key]!r} vs {db[key]!r}" if key != "name" else \
                f"dataset: {da[key]!r} vs {db[key]!r}"
    has_a, has_b = aid in a.data_fingerprints, bid in b.data_fingerprints
    fa, fb = a.data_fingerprints.get(aid), b.data_fingerprints.get(bid)
    if has_a and has_b and fa != fb:
        return (f"data fingerprint: {fa or 'none (embedded data)'} vs {fb or 'none (embedded data)'}: the files "
                "of the dataset differ (content, size or time stamps)")
    if (fa is None) != (fb is None) and (has_a or has_b):
        missing = b.folder if fa is not None else a.folder
        return (f"data fingerprint: {fa or 'not recorded'} vs {fb or 'not recorded'}: {missing} does not record "
                "which files it read (re-run its evaluation)")
    skip = set(DATA_KEY_ORDER) | ({"data_dir"} if (fa or fb) else set())
    for key in sorted((set(da) & set(db)) - skip):
        if da[key] != db[key]:
            return f"{key}: {da[key]!r} vs {db[key]!r}"
    return None


def check_comparable(aid: str, a: EvaluatedModel, b: EvaluatedModel, arrays_a: dict, arrays_b: dict,
                     bid: str | None = None) -> None:
    """:class:`UserError` naming the first difference when A's result ``aid`` and B's ``bid`` (default: the same
    id) measured other things, on other data, or on other examples."""
    bid = bid or aid
    ra, rb = a.results[aid], b.results[bid]
    where = f"'{aid}' of {a.folder} and " + (f"'{bid}' of " if bid != aid else "") + f"{b.folder}"
    if ra.get("evaluator") != rb.get("evaluator"):
        raise UserError(f"{where} are different evaluators ({ra.get('evaluator')} vs {rb.get('evaluator')}): "
                        "compare results of the same evaluator")
    diff = _first_difference(_settings(ra), _settings(rb))
    if diff:
        raise UserError(f"{where} ran with different settings ({diff}): compare evaluations made with the same "
                        "settings (the same config, or --evaluators to leave this one out)")
    diff = data_difference(a, aid, b, bid)
    if diff:
        raise UserError(f"{where} ran on different data ({diff}): compare evaluations of the same data")
    ia, ib = arrays_a["index"], arrays_b["index"]
    if len(ia) != len(ib) or not np.array_equal(ia, ib):
        only = np.setdiff1d(ia, ib)
        other = np.setdiff1d(ib, ia)
        if only.size or other.size:
            detail = (f"{len(ia)} vs {len(ib)}; e.g. index {int(only[0]) if only.size else int(other[0])} is in one "
                      "only")
        else:
            at = int(np.flatnonzero(ia != ib)[0]) if len(ia) == len(ib) else min(len(ia), len(ib))
            detail = f"{len(ia)} vs {len(ib)}, the same indices in another order or repeated (first at position {at})"
        raise UserError(f"{where} were evaluated on different examples ({detail}): compare evaluations of the "
                        "same examples (same n_examples and selection)")
    if not np.array_equal(arrays_a["y_true"], arrays_b["y_true"]):
        bad = int(ia[np.flatnonzero(arrays_a["y_true"] != arrays_b["y_true"])[0]])
        raise UserError(f"{where} give example {bad} different labels: they are not the same dataset")


Side = str | Path | EvaluatedModel | Sequence[str | Path | EvaluatedModel]


def _side(value: Any) -> list[EvaluatedModel]:
    if isinstance(value, (str, Path, EvaluatedModel)) or hasattr(value, "arrays") and hasattr(value, "results"):
        value = [value]
    out = []
    for v in value:
        if isinstance(v, EvaluatedModel):
            out.append(v)
        elif hasattr(v, "results") and hasattr(v, "arrays") and isinstance(v.arrays, dict):
            out.append(_from_report(v))  # a benchmark() Report
        else:
            out.append(load_evaluated(v))
    if not out:
        raise UserError("compare: a side has no evaluation: pass at least one folder per side")
    return out


class _InMemory(EvaluatedModel):
    def __init__(self, report) -> None:
        meta = report.meta if isinstance(getattr(report, "meta", None), dict) else {}
        name = meta.get("dataset")
        super().__init__(name=report.model_name, folder=Path(f"<benchmark {report.model_name}>"),
                         results=report.results, class_names=list(report.class_names),
                         datasets={rid: {"name": name} for rid in report.results} if name else {},
                         data_fingerprints={rid: meta["data_fingerprint"] for rid in report.results}
                         if "data_fingerprint" in meta else {})
        self._arrays = report.arrays

    def arrays(self, result_id: str):
        return self._arrays.get(result_id)


def _from_report(report) -> EvaluatedModel:
    evaluation = getattr(report, "evaluation", None)
    if evaluation is not None:  # the evaluation it carries, read as rbla compare reads a folder (the same numbers)
        return load_evaluated(evaluation)
    folder = getattr(report, "folder", None)
    if folder is not None and (Path(folder) / "results").is_dir():
        return load_evaluated(folder)  # kept on disk: everything the files record (data fingerprints included)
    return _InMemory(report)  # a Report made by hand: its results and arrays


def _wrong(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return arrays["y_pred"] != arrays["y_true"]


def _pair_key(aid: str, bid: str) -> str:
    return aid if aid == bid else f"{aid} = {bid}"


def compare(a: Side, b: Side, *, evaluators: Sequence[str] | None = None, n_boot: int = 2000, level: float = 0.95,
            seed: int = 0, alpha: float = 0.05, a_name: str | None = None, b_name: str | None = None) -> Comparison:
    """Compare evaluations ``a`` and ``b`` (each: a model's evaluation folder, a model_info JSON beside one, a
    ``benchmark()`` Report, or a list of them: several seeds). Results are paired by what they measured
    (:func:`pair_results`); ``evaluators`` keeps the pairs one of whose ids it names. With one evaluation per side
    the analysis is paired over the examples; with several per side (seeds) they are pooled in the two-level
    bootstrap (``EvaluatorComparison.pooled``; the verdict and tables use it) and the between-seed spread of class
    mean, SD and worst-class error is added. Results that could not be paired are listed in ``Comparison.skipped`` with the reason."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        raise UserError(f"seed {seed!r} must be an integer from 0 to 2**32 - 1 (the bootstrap's random seed)")
    side_a, side_b = _side(a), _side(b)
    first_a, first_b = side_a[0], side_b[0]
    a_name = a_name or first_a.name
    b_name = b_name or first_b.name
    if a_name == b_name:
        a_name, b_name = f"A ({a_name})", f"B ({b_name})"
    pairs, unpaired = pair_results(first_a, first_b, a_name, b_name)
    skipped: dict[str, str] = {key.replace("A:", f"{a_name}'s ", 1).replace("B:", f"{b_name}'s ", 1): why
                               for key, why in unpaired.items()}
    if evaluators:
        wanted = [p for p in pairs if p[0] in evaluators or p[1] in evaluators or _pair_key(*p) in evaluators]
        named = {r for p in wanted for r in (p[0], p[1], _pair_key(*p))}
        unknown = [r for r in evaluators if r not in named]
        if unknown:
            why = "; ".join(f"{k}: {v}" for k, v in unpaired.items() if k.split(":", 1)[1] in unknown)
            raise UserError(f"--evaluators names {unknown}, which the two evaluations do not share"
                            f"{f' ({why})' if why else ''}: use some of "
                            f"{', '.join(_pair_key(*p) for p in pairs) or '(none)'}")
        skipped.update({f"{_pair_key(*p)}": "left out by --evaluators" for p in pairs if p not in wanted})
        pairs = wanted
    compared: dict[str, EvaluatorComparison] = {}
    for aid, bid in pairs:
        key = _pair_key(aid, bid)
        arr_a, arr_b = first_a.arrays(aid), first_b.arrays(bid)
        if arr_a is None or arr_b is None or "y_pred" not in arr_a or "y_pred" not in arr_b:
            skipped[key] = "no per-example predictions of its clean test images (cache/<id>/<evaluator>/all.npz)"
            continue
        check_comparable(aid, first_a, first_b, arr_a, arr_b, bid)
        k = _num_classes(first_a, first_b, aid, bid, arr_a)
        names = _class_names(first_a, first_b, k)
        y = arr_a["y_true"]
        boot = stats.paired_bootstrap(y, _wrong(arr_a), _wrong(arr_b), k, n_boot=n_boot, level=level, seed=seed)
        tests = stats.per_class_tests(y, _wrong(arr_a), _wrong(arr_b), k)
        comp = EvaluatorComparison(key, result_label(first_a.results[aid]), names, boot["n"], boot, tests,
                                   alpha=alpha, a_id=aid, b_id=bid,
                                   class_ci=stats.per_class_intervals(y, _wrong(arr_a), _wrong(arr_b), k, level))
        if len(side_a) > 1 or len(side_b) > 1:
            comp.seeds = _seed_spread(aid, bid, side_a, side_b, k, level)
            comp.pooled = _pooled(aid, bid, side_a, side_b, k, n_boot, level, seed)
        compared[key] = comp
    if not compared:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise UserError(f"{first_a.folder} and {first_b.folder} share no result to compare "
                        f"(A: {', '.join(first_a.results)}; B: {', '.join(first_b.results)}"
                        f"{f'; {why}' if why else ''}): evaluate both with the same evaluators and settings")
    return Comparison(a_name, b_name, compared, [m.folder for m in side_a], [m.folder for m in side_b], skipped)


def _num_classes(a: EvaluatedModel, b: EvaluatedModel, aid: str, bid: str, arrays: dict[str, np.ndarray]) -> int:
    found = []
    for m, rid in ((a, aid), (b, bid)):
        block = next(iter((m.results[rid].get("classwise") or {}).values()), None)
        if block and block.get(keys.ERROR) is not None:
            found.append(len(block[keys.ERROR]))
    if len(set(found)) > 1:
        raise UserError(f"'{aid}' of {a.folder} has {found[0]} classes but '{bid}' of {b.folder} has {found[1]}: "
                        "compare evaluations of the same dataset")
    differ = names_difference(a.class_names, b.class_names) if a.class_names and b.class_names else None
    if differ:
        raise UserError(f"{a.folder} and {b.folder} name their classes differently ({differ}): compare evaluations "
                        "of the same dataset")
    return found[0] if found else int(arrays["y_true"].max()) + 1


def _class_names(a: EvaluatedModel, b: EvaluatedModel, k: int) -> list[str]:
    for m in (a, b):
        if m.class_names and len(m.class_names) == k:
            return [str(n) for n in m.class_names]
    return [str(c) for c in range(k)]


def _pooled(aid: str, bid: str, side_a: list[EvaluatedModel], side_b: list[EvaluatedModel], k: int, n_boot: int,
            level: float, seed: int) -> dict[str, Any]:
    """Every seed of both sides in one two-level bootstrap (:mod:`robustbench_labelaug.stats`: seeds per side, then
    the examples within class, shared): the class mean / SD / worst-class differences and the per-class ones. Each
    seed is checked against A's first as a pair is (:func:`check_comparable`: the same evaluator and settings,
    data and examples); the seeds' own checks are :func:`_seed_spread`'s."""
    first = side_a[0]
    ref = first.arrays(aid)
    order = np.argsort(ref["index"], kind="stable")
    index, y = ref["index"][order], ref["y_true"][order]
    arms = {}
    for label, side, rid in (("A", side_a, aid), ("B", side_b, bid)):
        rows = []
        for m in side:
            arrays = m.arrays(rid)
            if m is not first:
                check_comparable(aid, first, m, ref, arrays, rid)
            rows.append(_wrong(arrays)[np.argsort(arrays["index"], kind="stable")])
        arms[label] = ArmOutcomes(label, np.arange(len(side)), index, y, np.stack(rows))
    draws = bootstrap_draws(arms, n_boot=n_boot, seed=seed, num_classes=k)
    diff = difference(draws, "A", "B", level)
    per_class = class_difference(arms, "A", "B", n_boot=n_boot, seed=seed, level=level, num_classes=k)
    return {"summary": {name: {key: diff[name][key] for key in ("a", "b", "diff", "ci", "p", "se")}
                        for name in stats.SUMMARIES},
            "a_error": per_class["a_error"], "b_error": per_class["b_error"], "diff": per_class["diff"],
            "class_ci": per_class["ci"], "n_seeds": (len(side_a), len(side_b)), "n_boot": n_boot, "level": level,
            "notes": diff["notes"]}


def _seed_spread(aid: str, bid: str, side_a: list[EvaluatedModel], side_b: list[EvaluatedModel], k: int,
                 level: float) -> dict[str, Any]:
    def values(side: list[EvaluatedModel], rid: str) -> np.ndarray:
        rows = []
        for m in side:
            if rid not in m.results:
                raise UserError(f"{m.folder} has no result '{rid}': every seed of a side needs the same evaluators")
            arr = m.arrays(rid)
            if arr is None:
                raise UserError(f"{m.folder} has no per-example results for '{rid}': re-run its evaluation")
            if m is not side[0]:
                diff = _first_difference(_settings(side[0].results[rid]), _settings(m.results[rid]))
                if diff:
                    raise UserError(f"'{rid}' of {side[0].folder} and {m.folder} ran with different settings "
                                    f"({diff}): seeds must be evaluated alike")
                diff = data_difference(side[0], rid, m, rid)
                if diff:
                    raise UserError(f"'{rid}' of {side[0].folder} and {m.folder} ran on different data ({diff}): "
                                    "seeds must be evaluated on the same data")
            rows.append(stats.summaries(stats.class_errors(arr["y_true"], _wrong(arr), k)))
        return np.array(rows)  # (seeds, 3)

    va, vb = values(side_a, aid), values(side_b, bid)
    return {name: stats.seed_spread(va[:, j], vb[:, j], level) for j, name in enumerate(stats.SUMMARIES)}


__all__ = ["Comparison", "EvaluatorComparison", "check_comparable", "compare", "data_difference", "measures_alike",
           "pair_results", "result_label"]
