"""A study's verdict table and its reading aids as Markdown (``verdicts.md``), from study.json's content.

Every effect is the arm's statistic minus the reference's (percentage points of error: negative = the arm has the
lower error, SD or worst class), with its interval and p from the two-level bootstrap, Holm's adjusted p over the
family, and, where not significant, the equivalence bound: the largest effect (in the endpoint's direction) the
interval does not exclude. Every name from the config is escaped (:func:`~robustbench_labelaug.mdtext.md_text`)."""

from __future__ import annotations

from typing import Any

from ..mdtext import md_text

STAT_WORDS = {"mean": "class mean error", "sd": "class SD", "worst": "worst-class error"}


def _num(value: Any, fmt: str = ".2f") -> str:
    return "–" if value is None else format(value, fmt)


def _ci(ci: Any) -> str:
    return "–" if not ci else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _p(p: Any) -> str:
    return "–" if p is None else (f"{p:.3g}" if p >= 1e-3 else "< 0.001")


def verdict_words(v: dict[str, Any], alpha: float) -> str:
    """One cell: significant (which way), or not, with the bound the data put on the effect."""
    if v.get("significant") is None:
        return "undetermined (no interval)"
    if v["significant"]:
        return f"significant ({'lower' if v['diff'] < 0 else 'higher'} than the reference; Holm p < {alpha:g})"
    bound = v.get("equivalence_bound")
    side = {"decrease": "a decrease", "increase": "an increase"}.get(v.get("direction"), "an effect")
    return (f"not significant; the data exclude {side} larger than {bound:.2f} pp" if bound is not None
            else "not significant")


def verdict_table(family: dict[str, dict[str, Any]], alpha: float, level: float) -> list[str]:
    if not family:
        return ["(none)"]
    pct = round(100 * level)
    lines = [f"| endpoint | arm | arm value | reference value | effect (arm − ref) | {pct} % CI | interval | p | "
             "Holm p | verdict |", "|---|---|---:|---:|---:|---|---|---:|---:|---|"]
    for v in family.values():
        lines.append(f"| {md_text(v['measure'])}: {STAT_WORDS[v['statistic']]} | {md_text(v['arm'])} | "
                     f"{_num(v['value'])} | {_num(v['reference_value'])} | {_num(v['diff'], '+.2f')} | "
                     f"{_ci(v['ci'])} | {v['interval']} | {_p(v['p'])} | {_p(v['p_holm'])} | "
                     f"{verdict_words(v, alpha)} |")
    notes = sorted({n for v in family.values() for n in v.get("notes") or []})
    return lines + ([""] + [f"- {md_text(n)}" for n in notes] if notes else [])


def aggregates_table(data: dict[str, Any], eps: str, measures: list[str]) -> list[str]:
    pct = round(100 * data["statistics"]["level"])
    lines = ["| arm | seeds | " + " | ".join(f"{md_text(m)}: {STAT_WORDS[s]} ({pct} % CI)" for m in measures
                                               for s in ("mean", "sd", "worst")) + " |",
             "|---|---:|" + "---|" * (3 * len(measures))]
    for name, arm in data["arms"].items():
        block = arm["eps"].get(eps)
        if block is None:
            continue
        cells = []
        for m in measures:
            for s in ("mean", "sd", "worst"):
                b = block["aggregates"][m][s]
                cells.append(f"{_num(b['estimate'])} {_ci(b['ci'])}")
        lines.append(f"| {md_text(name)} | {len(block['cells'])} | " + " | ".join(cells) + " |")
    return lines


def matched_lines(data: dict[str, Any]) -> list[str]:
    if not data["matched"]:
        return ["No arm sweeps a knob at the study eps: nothing to interpolate."]
    pct = round(100 * data["statistics"]["level"])
    lines = [f"| arm (sweep) | statistic | at the reference's mean error | value | {pct} % CI | − reference's own "
             f"| {pct} % CI | p | note |", "|---|---|---:|---:|---|---:|---|---:|---|"]
    for arm, block in data["matched"].items():
        sweep = f"{md_text(arm)} ({md_text(block['knob'])}: {', '.join(md_text(v) for v in block['values'])})"
        for stat in ("worst", "sd", "mean"):
            m = block.get(stat)
            if m is None:
                continue
            if "error" in m:
                lines.append(f"| {sweep} | {STAT_WORDS[stat]} | – | – | – | – | – | – | {md_text(m['error'])} |")
                continue
            lines.append(f"| {sweep} | {STAT_WORDS[stat]} | {_num(m['target'])} | {_num(m['value'])} | "
                         f"{_ci(m['ci'])} | {_num(m['diff'], '+.2f')} | {_ci(m['diff_ci'])} | {_p(m['p'])} | "
                         f"{md_text('; '.join(m['notes']))} |")
    return lines


def power_lines(data: dict[str, Any]) -> list[str]:
    if not data["power"]:
        return ["No power report was asked for (the config's 'power' block)."]
    lines = []
    for p in data["power"]:
        head = f"- **{md_text(p['arm'])} vs {md_text(p['reference'])}, {md_text(p['measure'])} {STAT_WORDS[p['statistic']]}**"
        if "error" in p:
            lines.append(f"{head}: {md_text(p['error'])}")
            continue
        seeds = p["seeds_for_power"]
        need = (f"{seeds} seeds per arm reach {p['target']:.0%} power" if seeds is not None else
                f"no number of seeds reaches {p['target']:.0%} power: the test set's own variance is too large for "
                "this effect (more test examples would be needed)")
        rel = f" ({100 * p['relative_effect']:+.2f} % of the reference's value)" if p.get("relative_effect") else ""
        c = p["components"]
        lines.append(f"{head}: effect of interest {p['effect']:+.3f} pp{rel}"
                     + (f", from {md_text(p['source'])}" if p.get("source") else "")
                     + f". Power with the seeds run ({p['n_seeds'][0]} + {p['n_seeds'][1]}): {p['power']:.0%}; "
                     f"{need}. Variance components (pp²): seeds {c['seed_var_a']:.3g} / {c['seed_var_b']:.3g}, "
                     f"test set shared {c['example_shared']:.3g}, per model {c['example_interaction']:.3g}.")
        h = p.get("holm_first_step")
        if h and h["comparisons"] > 1:
            hs = h["seeds_for_power"]
            lines.append(f"  - at Holm's first step over the {h['comparisons']} primary comparisons (alpha "
                         f"{h['alpha']:.3g}): power {h['power']:.0%}; "
                         + (f"{hs} seeds per arm reach {p['target']:.0%}" if hs is not None else
                            f"no number of seeds reaches {p['target']:.0%}"))
        lines += [f"  - {md_text(n)}" for n in p.get("notes") or []]
    return lines


def markdown(data: dict[str, Any]) -> str:
    st = data["statistics"]
    eps = f"{data['study_eps']:g}"
    n_primary = len(data["endpoints"]["primary"])
    measures = list(data["measures"])
    lines = [f"# {md_text(data['title'])}: verdicts", "",
             f"Study eps {eps} (curves to eps_max {data['eps_max']:g}); reference arm **{md_text(data['reference'])}**"
             f"{'; a --fast smoke run: its numbers mean nothing' if data['fast'] else ''}. Effects are arm − "
             f"reference in percentage points of error (negative: the arm is lower), {round(100 * st['level'])} % "
             f"intervals and p-values from the two-level bootstrap (seeds, then examples within class; "
             f"{st['n_boot']} replicates, estimand {st['estimand']}). Holm's correction over the {n_primary} primary "
             f"comparisons at alpha = {st['alpha']:g}; the secondary family is corrected on its own and is "
             "exploratory. Where an effect is not significant, the bound is the largest effect the interval still "
             "allows: the data exclude anything beyond it. A non-significant effect is not evidence of no effect "
             "unless that bound is small and the power (below) was adequate.", "",
             "## Primary endpoints", "", *verdict_table(data["endpoints"]["primary"], st["alpha"], st["level"]), "",
             "## Secondary endpoints", "", *verdict_table(data["endpoints"]["secondary"], st["alpha"], st["level"]),
             "", "## Matched robustness", "",
             "Each swept method read at the reference's mean robust error, interpolated along its sweep (never "
             "extrapolated), and its difference to the reference's own value:", "", *matched_lines(data), "",
             "## Power", "", *power_lines(data), "",
             f"## Aggregates at eps {eps}", "", *aggregates_table(data, eps, measures), ""]
    for other in data["eps"][1:]:
        e = f"{other:g}"
        lines += [f"## Aggregates at eps {e} (the eps scan)", "", *aggregates_table(data, e, measures), ""]
    return "\n".join(lines)


__all__ = ["markdown", "verdict_table", "verdict_words"]
