"""``compare(a, b)``: is B better than A, class by class, on the worst class, and is it significant?

For every evaluator both evaluations ran with the same settings on the same examples (per-example files, see
:mod:`.files`): per-class B - A error differences with stratified paired bootstrap CIs and an exact McNemar test
per class (Holm-adjusted over the classes), and the differences in class mean error, class SD and worst-class
error with paired stratified-bootstrap CIs; the worst class named; one verdict line. With several evaluations per
side (seeds) it also reports the between-seed spread of those statistics. Two evaluations made on different
examples or with different settings are refused, naming the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_savefig
from ..mdtext import md_text
from ..results import keys
from ..results.vocab import Protocol
from . import stats
from .files import EvaluatedModel, load_evaluated

IGNORED_SETTINGS = ("wall_seconds",)


@dataclass
class EvaluatorComparison:
    """One shared evaluator: the paired analysis of the first evaluation of each side, plus the seeds' spread."""

    id: str
    label: str                       # what ran, e.g. "PGD-40 (sound)"
    class_names: list[str]
    n: np.ndarray                    # examples per class
    boot: dict[str, Any]             # stats.paired_bootstrap
    tests: dict[str, np.ndarray]     # stats.per_class_tests
    seeds: dict[str, Any] = field(default_factory=dict)  # statistic -> stats.seed_spread (several per side)
    alpha: float = 0.05

    def worst_class(self, side: str) -> str:
        errors = self.boot["a_error" if side == "a" else "b_error"]
        return self.class_names[int(np.nanargmax(errors))]

    def verdict(self, a_name: str = "A", b_name: str = "B") -> str:
        """One line: B's worst-class error against A's, with its paired CI, significant or not."""
        s = self.boot["summary"]["worst"]
        diff, ci = s["diff"], s["ci"]
        level = round(100 * self.boot["level"])
        if abs(diff) < 1e-9:
            amount = "equal to"
        else:
            amount = f"{abs(diff):.1f} points {'lower' if diff < 0 else 'higher'} than"
        ci_text = f"{level} % CI [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "no CI"
        word = "significant" if stats.significant(ci) else "not significant"
        return (f"{b_name}'s worst-class {self.label} error ({self.worst_class('b')}: {s['b']:.1f} %) is {amount} "
                f"{a_name}'s ({self.worst_class('a')}: {s['a']:.1f} %), {ci_text}: {word}")

    def to_frame(self):
        """pandas DataFrame, one row per class: name, n, A and B error (%), B - A, its CI, McNemar p, Holm p."""
        import pandas as pd

        ci = self.boot["diff_ci"]
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
            lines += [f"## {md_text(rid)}: {md_text(e.label)}", "", f"**{md_text(e.verdict(self.a_name, self.b_name))}**",
                      "", f"| statistic | {a_name} | {b_name} | B - A | {level} % CI (paired stratified "
                      "bootstrap) |", "|---|---:|---:|---:|---|"]
            for name, title in (("mean", "class mean error"), ("sd", "class SD"), ("worst", "worst-class error")):
                s = e.boot["summary"][name]
                extra = f" ({md_text(e.worst_class('a'))} / {md_text(e.worst_class('b'))})" if name == "worst" else ""
                lines.append(f"| {title}{extra} | {s['a']:.2f} | {s['b']:.2f} | {s['diff']:+.2f} | "
                             f"{_ci(s['ci'])}{' *' if stats.significant(s['ci']) else ''} |")
            lines += ["", f"| class | n | {a_name} | {b_name} | B - A | {level} % CI | A-only wrong | "
                      "B-only wrong | McNemar p | Holm p |", "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
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
            diff = e.boot["diff"][keep]
            ci = np.array([e.boot["diff_ci"][c] or [np.nan, np.nan] for c in keep])
            colours = ["tab:red" if s else "tab:blue" for s in (e.tests["p_holm"][keep] < e.alpha)]
            ax.errorbar(np.arange(len(keep)), diff, yerr=[diff - ci[:, 0], ci[:, 1] - diff], fmt="none",
                        ecolor="grey", capsize=3)
            ax.scatter(np.arange(len(keep)), diff, c=colours, zorder=3)
            ax.axhline(0, color="black", lw=0.8)
            ax.set_xticks(np.arange(len(keep)), [e.class_names[c] for c in keep], rotation=90 if len(keep) > 20
                          else 0)
            ax.set_ylabel("B - A error (pp)")
            ax.set_title(f"{rid}: {e.label} — {self.b_name} - {self.a_name} (red: Holm p < {e.alpha})", fontsize=9)
        fig.tight_layout()
        try:
            return atomic_savefig(fig, path, dpi=120)  # a kill mid-write keeps the previous figure
        finally:
            plt.close(fig)


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
    return {k: v for k, v in (result.get("settings") or {}).items() if k not in IGNORED_SETTINGS}


def _first_difference(x: dict[str, Any], y: dict[str, Any]) -> str | None:
    for key in sorted(set(x) | set(y)):
        if x.get(key) != y.get(key):
            return f"{key}: {x.get(key)!r} vs {y.get(key)!r}"
    return None


def check_comparable(rid: str, a: EvaluatedModel, b: EvaluatedModel, arrays_a: dict, arrays_b: dict) -> None:
    """:class:`UserError` naming the first difference when ``a`` and ``b`` ran evaluator ``rid`` with other
    settings, on other data, or on other examples."""
    ra, rb = a.results[rid], b.results[rid]
    where = f"'{rid}' of {a.folder} and {b.folder}"
    if ra.get("evaluator") != rb.get("evaluator"):
        raise UserError(f"{where} are different evaluators ({ra.get('evaluator')} vs {rb.get('evaluator')}): "
                        "compare results of the same evaluator")
    diff = _first_difference(_settings(ra), _settings(rb))
    if diff:
        raise UserError(f"{where} ran with different settings ({diff}): compare evaluations made with the same "
                        "settings (the same config, or --evaluators to leave this one out)")
    diff = _first_difference(a.datasets.get(rid) or {}, b.datasets.get(rid) or {})
    if diff and a.datasets.get(rid) and b.datasets.get(rid):
        raise UserError(f"{where} ran on different data ({diff}): compare evaluations of the same dataset")
    ia, ib = arrays_a["index"], arrays_b["index"]
    if len(ia) != len(ib) or not np.array_equal(ia, ib):
        only = np.setdiff1d(ia, ib)
        other = np.setdiff1d(ib, ia)
        raise UserError(f"{where} were evaluated on different examples ({len(ia)} vs {len(ib)}; e.g. index "
                        f"{int(only[0]) if only.size else int(other[0])} is in one only): compare evaluations of the "
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
        super().__init__(name=report.model_name, folder=Path(f"<benchmark {report.model_name}>"),
                         results=report.results, class_names=list(report.class_names))
        self._arrays = report.arrays

    def arrays(self, result_id: str):
        return self._arrays.get(result_id)


def _from_report(report) -> EvaluatedModel:
    return _InMemory(report)


def _wrong(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return arrays["y_pred"] != arrays["y_true"]


def compare(a: Side, b: Side, *, evaluators: Sequence[str] | None = None, n_boot: int = 2000, level: float = 0.95,
            seed: int = 0, alpha: float = 0.05, a_name: str | None = None, b_name: str | None = None) -> Comparison:
    """Compare evaluations ``a`` and ``b`` (each: a model's evaluation folder, a model_info JSON beside one, a
    ``benchmark()`` Report, or a list of them: several seeds). The paired analysis uses the first of each side;
    with several per side the between-seed spread of class mean, SD and worst-class error is added."""
    side_a, side_b = _side(a), _side(b)
    first_a, first_b = side_a[0], side_b[0]
    a_name = a_name or first_a.name
    b_name = b_name or first_b.name
    if a_name == b_name:
        a_name, b_name = f"A ({a_name})", f"B ({b_name})"
    shared = [rid for rid in first_a.results if rid in first_b.results]
    if evaluators:
        unknown = [r for r in evaluators if r not in shared]
        if unknown:
            raise UserError(f"--evaluators names {unknown}, which the two evaluations do not share: use some of "
                            f"{', '.join(shared) or '(none)'}")
        shared = list(evaluators)
    compared: dict[str, EvaluatorComparison] = {}
    skipped: dict[str, str] = {}
    for rid in shared:
        arr_a, arr_b = first_a.arrays(rid), first_b.arrays(rid)
        if arr_a is None or arr_b is None or "y_pred" not in arr_a or "y_pred" not in arr_b:
            skipped[rid] = "no per-example predictions of its clean test images (cache/<id>/<evaluator>/all.npz)"
            continue
        check_comparable(rid, first_a, first_b, arr_a, arr_b)
        k = _num_classes(first_a, first_b, rid, arr_a)
        names = _class_names(first_a, first_b, k)
        y = arr_a["y_true"]
        boot = stats.paired_bootstrap(y, _wrong(arr_a), _wrong(arr_b), k, n_boot=n_boot, level=level, seed=seed)
        tests = stats.per_class_tests(y, _wrong(arr_a), _wrong(arr_b), k)
        comp = EvaluatorComparison(rid, result_label(first_a.results[rid]), names, boot["n"], boot, tests,
                                   alpha=alpha)
        if len(side_a) > 1 or len(side_b) > 1:
            comp.seeds = _seed_spread(rid, side_a, side_b, k, level)
        compared[rid] = comp
    if not compared:
        raise UserError(f"{first_a.folder} and {first_b.folder} share no evaluator with per-example results "
                        f"(A: {', '.join(first_a.results)}; B: {', '.join(first_b.results)}): evaluate both with "
                        "the same config")
    return Comparison(a_name, b_name, compared, [m.folder for m in side_a], [m.folder for m in side_b], skipped)


def _num_classes(a: EvaluatedModel, b: EvaluatedModel, rid: str, arrays: dict[str, np.ndarray]) -> int:
    for m in (a, b):
        block = next(iter((m.results[rid].get("classwise") or {}).values()), None)
        if block and block.get(keys.ERROR) is not None:
            return len(block[keys.ERROR])
    return int(arrays["y_true"].max()) + 1


def _class_names(a: EvaluatedModel, b: EvaluatedModel, k: int) -> list[str]:
    for m in (a, b):
        if m.class_names and len(m.class_names) == k:
            return [str(n) for n in m.class_names]
    return [str(c) for c in range(k)]


def _seed_spread(rid: str, side_a: list[EvaluatedModel], side_b: list[EvaluatedModel], k: int,
                 level: float) -> dict[str, Any]:
    def values(side: list[EvaluatedModel]) -> np.ndarray:
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
            rows.append(stats.summaries(stats.class_errors(arr["y_true"], _wrong(arr), k)))
        return np.array(rows)  # (seeds, 3)

    va, vb = values(side_a), values(side_b)
    return {name: stats.seed_spread(va[:, j], vb[:, j], level) for j, name in enumerate(stats.SUMMARIES)}


__all__ = ["Comparison", "EvaluatorComparison", "check_comparable", "compare", "result_label"]
