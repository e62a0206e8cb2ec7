"""A study's numbers from its evaluation store (torch-free: numpy, scipy, pandas through :mod:`..stats`).

Per measure and eps, every point's cells are read as per-example outcomes (the stored part files of the measure's
result, through :mod:`robustbench_labelaug.compare.files`, i.e. through the store): ``wrong`` = the prediction
under the measure was not the true class; for a robustness curve the example's share of the curve it lies below,
``1 - min(radius, eps_max) / eps_max``, whose class mean is exactly the class's ``100 - area`` (the curve's
class error, :func:`robustbench_labelaug.scoring.curves.curve_area`). One two-level bootstrap per measure and eps
over every point at that eps (:func:`robustbench_labelaug.stats.bootstrap_draws`: seeds, then examples within
class, the example resamples shared, so the points are paired over examples) gives:

- the aggregates: each point's class mean error, class SD and worst-class error with intervals;
- the verdicts: each pre-specified endpoint (point - reference) with its interval and p, Holm-adjusted over its
  family (primary; secondary), the equivalence bound where not significant (:func:`~..stats.endpoint_verdicts`);
- the matched-robustness comparison: each swept arm's statistics at the reference's mean robust error, interpolated
  along its sweep (:func:`~..stats.matched_robustness`);
- the power reports: from the measured seed and example variance, the power at the seeds run and the seeds needed
  for the target power at the effect of interest (:func:`~..stats.power_report`).

Intervals: ``percentile`` for the class mean error, the bias-corrected ``bc`` for the class SD and the worst class
(docs/statistics.md: resampling pushes both up), unless an endpoint names its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..compare.files import load_evaluated
from ..errors import UserError
from ..stats import (
    ArmOutcomes,
    VarianceComponents,
    arm_summary,
    bootstrap_draws,
    difference,
    endpoint_verdicts,
    matched_robustness,
    power,
    power_report,
    seeds_for_power,
)
from ..stats.bootstrap import class_errors_per_seed, per_seed_statistics
from ..store import EvaluationStore
from .cells import EVAL
from .config import STATISTICS, Study
from .plan import Plan, Point

DEFAULT_INTERVALS = {"mean": "percentile", "sd": "bc", "worst": "bc"}
STATISTIC_RANGE = {"mean": 100.0, "sd": 50.0, "worst": 100.0}  # largest value (the smallest is 0), in % / pp


def eps_key(eps: float) -> str:
    """An eps as a JSON key (``0.1``)."""
    return f"{eps:g}"


def interval_of(statistic: str, given: str | None = None) -> str:
    return given or DEFAULT_INTERVALS[statistic]


def result_ids(study: Study, fast: bool) -> dict[str, str]:
    """Measure id -> the id its results are stored under (``--fast`` renames pgd40 -> pgd10)."""
    caps = {"n_examples": study.cfg.fast.n_examples}
    return {m.id: m.effective_id(fast, caps) for m in study.measures}


def cell_outcome(model, rid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(index, y, wrong)`` of one model's result ``rid`` in index order: ``wrong`` bool (the prediction under the
    measure was wrong) or, for a robustness curve (per-example ``radius``), ``1 - min(radius, eps_max) / eps_max``."""
    if rid not in model.results:
        raise UserError(f"{model.folder} has no result '{rid}': run the study again to evaluate it")
    arrays = model.arrays(rid)
    if arrays is None or "y_true" not in arrays:
        raise UserError(f"{model.folder} has no per-example results of '{rid}': delete {model.folder} and run the "
                        "study again to re-evaluate it")
    index = np.asarray(arrays["index"], dtype=np.int64)
    y = np.asarray(arrays["y_true"], dtype=np.int64)
    if "radius" in arrays:
        eps_max = float(((model.results[rid].get("details") or {}).get("curve") or {})["eps_max"])
        wrong = 1.0 - np.minimum(np.asarray(arrays["radius"], dtype=np.float64), eps_max) / eps_max
    else:
        wrong = np.asarray(arrays["y_pred"]) != y
    order = np.argsort(index, kind="stable")
    return index[order], y[order], wrong[order]


def point_outcomes(point: Point, cells: list, models: dict, rid: str):
    """The point's cells as one :class:`~..stats.ArmOutcomes` (seeds = seed indices); ``UserError`` where its
    seeds were scored on different examples."""
    rows, index, y = [], None, None
    for cell in sorted(cells, key=lambda c: c.seed_index):
        i, yy, wrong = cell_outcome(models[cell.training], rid)
        if index is None:
            index, y = i, yy
        elif not (np.array_equal(i, index) and np.array_equal(yy, y)):
            raise UserError(f"the seeds of {point.name} were evaluated on different examples by '{rid}' "
                            f"({cells[0].training} vs {cell.training}): evaluate every cell alike")
        rows.append(wrong)
    return ArmOutcomes(point.name, np.array([c.seed_index for c in sorted(cells, key=lambda c: c.seed_index)]),
                       index, y, np.stack(rows))


def _summary(draws, arm: str, level: float) -> dict[str, Any]:
    """Each statistic's estimate with its interval, clipped to the statistic's range (an error rate and the worst
    class lie in [0, 100], a class SD in [0, 50]: the bootstrap's widened seed resamples can reach past them)."""
    out = {}
    for statistic in STATISTICS:
        method = interval_of(statistic)
        block = dict(arm_summary(draws, arm, level, method)[statistic])
        if block.get("ci") is not None:
            top = STATISTIC_RANGE[statistic]
            block["ci"] = [min(max(block["ci"][0], 0.0), top), min(max(block["ci"][1], 0.0), top)]
        out[statistic] = {**block, "interval": method}
    return out


def _per_seed(outcomes, k: int) -> dict[str, list[float]]:
    values = per_seed_statistics(outcomes, k)
    return {s: values[:, j].tolist() for j, s in enumerate(STATISTICS)}


def _class_errors(outcomes, k: int) -> list[float]:
    return np.nanmean(class_errors_per_seed(outcomes, k), axis=0).tolist()


def analyse(study: Study, plan: Plan, study_dir: Path, fast: bool) -> dict[str, Any]:
    """study.json's content (see :func:`robustbench_labelaug.study.run.run_study`)."""
    cfg, ep = study.cfg, study.cfg.endpoints
    eval_dir = study_dir / EVAL
    store = EvaluationStore(eval_dir, writer=False)
    models = {name: load_evaluated(eval_dir / name) for name in plan.evaluated()}
    rids = result_ids(study, fast)
    k = study.dataset.dataset_spec.count_classes(study.dataset.data_dir)
    reference = plan.points_of(cfg.reference)[0]
    outcomes: dict[tuple[str, str], dict[str, Any]] = {}  # (eps key, measure) -> point name -> ArmOutcomes
    draws: dict[tuple[str, str], Any] = {}
    arms: dict[str, Any] = {}
    for point in plan.points:
        arm = study.arm(point.arm)
        arms[point.name] = {"arm": point.arm, "label": _label(study, point), "method": arm.method,
                            "knobs": dict(point.knobs), "swept": point.swept, "value": point.value, "eps": {}}
    for eps in study.eps_values():
        e = eps_key(eps)
        present = [p for p in plan.points if plan.cells_of(p, eps)]
        for measure in study.measures:
            rid = rids[measure.id]
            table = {p.name: point_outcomes(p, plan.cells_of(p, eps), models, rid) for p in present}
            outcomes[(e, measure.id)] = table
            draws[(e, measure.id)] = bootstrap_draws(table, n_boot=ep.n_boot, seed=ep.seed, estimand=ep.estimand,
                                                     num_classes=k)
        for p in present:
            cells = sorted(plan.cells_of(p, eps), key=lambda c: c.seed_index)
            block = {"cells": [{"seed": c.seed_index, "training": c.training,
                                "model_info": _relative(store.model_info_path(c.training), study_dir),
                                "checkpoint": _relative(study_dir / "train" / c.training / "last.pth.tar",
                                                        study_dir)} for c in cells],
                     "aggregates": {}}
            for measure in study.measures:
                o = outcomes[(e, measure.id)][p.name]
                block["aggregates"][measure.id] = {
                    **_summary(draws[(e, measure.id)], p.name, ep.level), "class_errors": _class_errors(o, k),
                    "per_seed": _per_seed(o, k), "n_seeds": int(o.num_seeds), "n_examples": int(o.index.size)}
            arms[p.name]["eps"][e] = block
    study_eps = eps_key(cfg.eps)
    endpoints = {family: _verdicts(study, plan, draws, study_eps, reference, getattr(ep, family))
                 for family in ("primary", "secondary")}
    matched = _matched(study, plan, draws, study_eps, reference) if cfg.tradeoff is not None else {}
    power = [_power(study, plan, outcomes, study_eps, reference, p, len(endpoints["primary"])) for p in cfg.power]
    return {
        "title": study.title, "config": str(study.path), "fast": fast, "study_eps": cfg.eps, "eps_max": cfg.eps_max,
        "eps": [eps for eps in study.eps_values()], "reference": reference.name, "num_classes": k,
        "dataset": study.dataset.spec(),
        "statistics": {"method": "two-level bootstrap: seeds, then examples within class (stats.bootstrap_draws)",
                       "n_boot": ep.n_boot, "level": ep.level, "alpha": ep.alpha, "correction": ep.correction,
                       "estimand": ep.estimand, "seed": ep.seed, "intervals": dict(DEFAULT_INTERVALS),
                       "errors": "percent; a robustness curve's class error is 100 - the area under the class's "
                                 "robust-accuracy curve on [0, eps_max] (its error averaged over eps)"},
        "measures": {m.id: {"evaluator": m.name, "result_id": rids[m.id]} for m in study.measures},
        "arms": arms, "endpoints": endpoints, "matched": matched, "power": power,
    }


def _label(study: Study, point: Point) -> str:
    base = study.arm(point.arm).label or point.arm
    return f"{base} ({point.swept}={point.value})" if point.swept else base


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _verdicts(study: Study, plan: Plan, draws, e: str, reference: Point, family: list) -> dict[str, Any]:
    ep = study.cfg.endpoints
    entries: dict[str, dict[str, Any]] = {}
    directions: dict[str, str] = {}
    for endpoint in family:
        method = interval_of(endpoint.statistic, endpoint.interval)
        arms = endpoint.arms or [a.name for a in study.cfg.arms if a.name != study.cfg.reference]
        for arm in arms:
            for point in plan.points_of(arm):
                if not plan.cells_of(point, study.cfg.eps):
                    continue
                d = difference(draws[(e, endpoint.measure)], reference.name, point.name, ep.level, method)
                s = d[endpoint.statistic]
                name = f"{endpoint.measure} {endpoint.statistic}: {point.name} - {reference.name}"
                entries[name] = {"measure": endpoint.measure, "statistic": endpoint.statistic, "arm": point.name,
                                 "reference": reference.name, "value": s["b"], "reference_value": s["a"],
                                 "diff": s["diff"], "ci": s["ci"], "p": s["p"], "se": s["se"], "interval": method,
                                 "direction": endpoint.direction, "n_seeds": d["n_seeds"],
                                 "n_examples": d["n_examples"], "notes": d["notes"]}
                directions[name] = endpoint.direction
    if not entries:
        return {}
    return endpoint_verdicts(entries, ep.alpha, directions)


def _matched(study: Study, plan: Plan, draws, e: str, reference: Point) -> dict[str, Any]:
    t = study.cfg.tradeoff
    out: dict[str, Any] = {}
    for arm in study.cfg.arms:
        points = [p for p in plan.points_of(arm.name) if plan.cells_of(p, study.cfg.eps)]
        if arm.name == study.cfg.reference or len(points) < 2:
            continue
        block: dict[str, Any] = {"sweep": [p.name for p in points], "knob": points[0].swept,
                                 "values": [p.value for p in points], "measure": t.measure}
        for y in t.matched:
            try:
                block[y] = matched_robustness(draws[(e, t.measure)], [p.name for p in points], reference.name,
                                              x="mean", y=y, level=study.cfg.endpoints.level,
                                              method=interval_of(y))
            except UserError as exc:  # the reference's mean robust error lies outside the sweep
                block[y] = {"error": str(exc)}
        out[arm.name] = block
    return out


def _power(study: Study, plan: Plan, outcomes, e: str, reference: Point, p, n_primary: int) -> dict[str, Any]:
    ep = study.cfg.endpoints
    point = next(q for q in plan.points_of(p.arm) if q.swept is None or q.value == p.value)
    table = outcomes[(e, p.measure)]
    data = {reference.name: table[reference.name], point.name: table[point.name]}
    report = power_report(data, reference.name, point.name, statistic=p.statistic, effect=p.effect,
                          relative_effect=p.relative_effect, alpha=ep.alpha, target=p.target,
                          n_boot=min(ep.n_boot, 1000), seed=ep.seed)
    # Holm's first step tests the smallest p at alpha / m (m primary comparisons): the power there is the
    # conservative figure for a comparison that belongs to the primary family
    m = max(1, n_primary)
    comps = VarianceComponents(p.statistic, **report["components"])
    holm = {"alpha": ep.alpha / m, "comparisons": m,
            "power": power(report["effect"], comps, tuple(report["n_seeds"]), ep.alpha / m),
            "seeds_for_power": seeds_for_power(report["effect"], comps, ep.alpha / m, p.target)}
    return {"arm": point.name, "measure": p.measure, "source": p.source, "relative_effect": p.relative_effect,
            "reference": reference.name, **report, "holm_first_step": holm}


__all__ = ["DEFAULT_INTERVALS", "analyse", "cell_outcome", "eps_key", "interval_of", "point_outcomes", "result_ids"]
