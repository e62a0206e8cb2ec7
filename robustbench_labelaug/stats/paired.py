"""Paired statistics for comparing two models on the same examples: pure functions on arrays (numpy + scipy).

``a_wrong`` / ``b_wrong`` are per-example mistakes (bool) of models A and B on the SAME examples, ``y`` their
classes. Differences are always B - A, in percentage points of error (negative: B makes fewer mistakes).

- :func:`mcnemar_exact`: the exact McNemar test of one class (a two-sided binomial test on the discordant pairs);
- :func:`holm`: Holm's step-down adjustment of several p-values (one per class);
- :func:`newcombe_paired`: Newcombe's (1998) score interval for the difference of two paired proportions (his
  method 10: Wilson intervals of both proportions combined with the phi correlation, continuity-corrected): the
  per-class interval, honest at small counts (never zero width, unlike a bootstrap of a class without
  discordant pairs); :func:`per_class_intervals` applies it to every class;
- :func:`paired_bootstrap`: the stratified paired bootstrap (``scipy.stats.bootstrap``): each class's examples are
  resampled on their own, and an example carries both models' outcomes, so the pairing is kept; it gives CIs of
  the per-class differences and of the differences in class mean error, class SD and worst-class error;
- :func:`seed_spread`: mean, SD and a t interval over seeds, and Welch's interval of the difference of means.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

METHODS = ("percentile", "basic", "BCa")
# the fewest examples every class needs before the stratified bootstrap's CIs of class mean / SD / worst class are
# written: below it a class is resampled from (almost) one value and the interval shrinks to a point
MIN_BOOTSTRAP_N = 10
SUMMARIES = ("mean", "sd", "worst")  # class mean error, class SD (population), worst-class error


def _as_arrays(y, a_wrong, b_wrong) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64).ravel()
    a, b = np.asarray(a_wrong, dtype=bool).ravel(), np.asarray(b_wrong, dtype=bool).ravel()
    if not (len(y) == len(a) == len(b)):
        raise ValueError(f"y, a_wrong and b_wrong must have one entry per example, got {len(y)}, {len(a)}, {len(b)}")
    return y, a, b


def mcnemar_exact(a_wrong, b_wrong) -> dict[str, Any]:
    """Exact McNemar test: ``a_only`` (A wrong, B right) and ``b_only`` (A right, B wrong) discordant pairs;
    ``p`` = two-sided binomial test of ``b_only`` out of ``a_only + b_only`` at 1/2 (1.0 without discordant
    pairs): ``min(1, 2 * P[X <= min])``, X ~ Binomial(n, 1/2), which equals ``scipy.stats.binomtest``'s p."""
    from scipy.stats import binom

    a, b = np.asarray(a_wrong, dtype=bool), np.asarray(b_wrong, dtype=bool)
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    p = 1.0 if n == 0 else float(min(1.0, 2.0 * binom.cdf(min(a_only, b_only), n, 0.5)))
    return {"a_only": a_only, "b_only": b_only, "p": p}


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval of a proportion (``successes`` of ``n``; fractions, not %): scipy's."""
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def newcombe_paired(both: int, first_only: int, second_only: int, neither: int, level: float = 0.95
                    ) -> tuple[float, float, float]:
    """``(difference, low, high)`` of ``p1 - p2`` (fractions) for paired binary outcomes: ``p1 = (both +
    first_only) / n``, ``p2 = (both + second_only) / n``, by Newcombe's (1998) method 10: the Wilson intervals
    ``(l1, u1)``, ``(l2, u2)`` of both proportions, combined as ``low = d - sqrt((p1-l1)^2 - 2 phi (p1-l1)(u2-p2)
    + (u2-p2)^2)`` and ``high = d + sqrt((u1-p1)^2 - 2 phi (u1-p1)(p2-l2) + (p2-l2)^2)``, where phi is the
    correlation of the 2 x 2 table with Newcombe's correction (``ad - bc`` reduced by ``n/2`` when above it, 0
    between 0 and ``n/2``; phi = 0 when a margin is empty). Bounds are clipped to [-1, 1]."""
    counts = (both, first_only, second_only, neither)
    if any(int(c) != c or c < 0 for c in counts):
        raise ValueError(f"counts must be non-negative integers, got {counts}")
    n = both + first_only + second_only + neither
    if n == 0:
        raise ValueError("no pairs: an interval needs at least one")
    p1, p2 = (both + first_only) / n, (both + second_only) / n
    l1, u1 = wilson(both + first_only, n, level)
    l2, u2 = wilson(both + second_only, n, level)
    margins = (both + first_only) * (second_only + neither) * (both + second_only) * (first_only + neither)
    cross = both * neither - first_only * second_only
    cross = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = cross / math.sqrt(margins) if margins > 0 else 0.0
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return d, max(low, -1.0), min(high, 1.0)


def per_class_intervals(y, a_wrong, b_wrong, num_classes: int, level: float = 0.95) -> list[list[float] | None]:
    """Per class, Newcombe's interval (:func:`newcombe_paired`) of the B - A error difference in percentage
    points; None for a class without examples."""
    y, a, b = _as_arrays(y, a_wrong, b_wrong)
    out: list[list[float] | None] = [None] * num_classes
    for c in range(num_classes):
        mask = y == c
        if mask.any():
            ac, bc = a[mask], b[mask]
            _, low, high = newcombe_paired(int(np.sum(ac & bc)), int(np.sum(bc & ~ac)), int(np.sum(ac & ~bc)),
                                           int(np.sum(~ac & ~bc)), level)
            out[c] = [100.0 * low, 100.0 * high]
    return out


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN and is not counted)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def class_errors(y, wrong, num_classes: int) -> np.ndarray:
    """Per-class error (%), NaN for a class without examples."""
    y, wrong = np.asarray(y, dtype=np.int64), np.asarray(wrong, dtype=np.float64)
    n = np.bincount(y, minlength=num_classes)[:num_classes]
    w = np.bincount(y, weights=wrong, minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, 100.0 * w / n, np.nan)


def summaries(errors: np.ndarray) -> np.ndarray:
    """(class mean, population SD, worst) of per-class errors along the last axis (NaN classes left out)."""
    return np.stack([np.nanmean(errors, axis=-1), np.nanstd(errors, axis=-1), np.nanmax(errors, axis=-1)])


def _statistic(constants: np.ndarray, n_const: int):
    """Per-class B - A differences of the resampled classes, then of the fixed (one-example) classes, then the
    differences of class mean, SD and worst error. A sample's entries are codes ``a_wrong + 2 * b_wrong``."""

    def stat(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        a = [100.0 * np.mean(s % 2, axis=axis) for s in samples]
        b = [100.0 * np.mean(s // 2, axis=axis) for s in samples]
        a_err, b_err = np.stack(a, axis=-1), np.stack(b, axis=-1)
        if n_const:
            fixed_a = np.broadcast_to(constants[0], (*a_err.shape[:-1], n_const))
            fixed_b = np.broadcast_to(constants[1], (*b_err.shape[:-1], n_const))
            a_err, b_err = np.concatenate([a_err, fixed_a], -1), np.concatenate([b_err, fixed_b], -1)
        diff = b_err - a_err
        summary = summaries(b_err) - summaries(a_err)  # (3, ...)
        return np.concatenate([np.moveaxis(diff, -1, 0), summary], axis=0)

    return stat


def paired_bootstrap(y, a_wrong, b_wrong, num_classes: int, *, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0, method: str = "percentile", min_n: int = MIN_BOOTSTRAP_N) -> dict[str, Any]:
    """Stratified paired bootstrap CIs of B - A (percentage points) with ``scipy.stats.bootstrap``.

    Each class with >= 2 examples is one sample of codes ``a_wrong + 2 * b_wrong`` resampled on its own
    (``paired=False`` across classes: the classes are the strata; the code keeps A's and B's outcome on the same
    example together); a class with one example keeps its value. Returns ``diff`` (per class, NaN without
    examples), ``diff_ci`` (per class ``[low, high]``, None without examples), ``summary``: for ``mean``, ``sd``,
    ``worst``: ``{"a", "b", "diff", "ci": [low, high]}``; ``n_boot``, ``level``, ``method``; ``no_ci``: why the
    summary CIs are None (a class with examples has fewer than ``min_n``, or no example is discordant, so every
    resample gives the same difference), else None. A summary interval is never written with zero width."""
    from scipy.stats import bootstrap

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    y, a, b = _as_arrays(y, a_wrong, b_wrong)
    codes = a.astype(np.int8) + 2 * b.astype(np.int8)
    counts = np.bincount(y, minlength=num_classes)[:num_classes]
    resampled = [c for c in range(num_classes) if counts[c] >= 2]
    fixed = [c for c in range(num_classes) if counts[c] == 1]
    samples = tuple(codes[y == c].astype(np.float64) for c in resampled)
    constants = np.array([[100.0 * (codes[y == c][0] % 2) for c in fixed],
                          [100.0 * (codes[y == c][0] // 2) for c in fixed]]).reshape(2, len(fixed))
    stat = _statistic(constants, len(fixed))
    a_err, b_err = class_errors(y, a, num_classes), class_errors(y, b, num_classes)
    point = np.concatenate([(b_err - a_err)[resampled + fixed], summaries(b_err) - summaries(a_err)])
    if samples:
        with warnings.catch_warnings():  # a degenerate BCa interval: NaN, reported as None
            warnings.simplefilter("ignore")
            res = bootstrap(samples, stat, n_resamples=n_boot, confidence_level=level, method=method,
                            vectorized=True, paired=False, axis=-1, rng=np.random.default_rng(seed),
                            batch=max(1, min(n_boot, 20_000_000 // max(1, len(y)))))
        low, high = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
    else:
        low, high = point.copy(), point.copy()
    order = resampled + fixed
    diff_ci: list[list[float] | None] = [None] * num_classes
    diff = np.full(num_classes, np.nan)
    for i, c in enumerate(order):
        diff[c] = point[i]
        diff_ci[c] = _interval(low[i], high[i])
    k = len(order)
    sa, sb = summaries(a_err), summaries(b_err)
    no_ci = None
    present = np.flatnonzero(counts > 0)
    if present.size and counts[present].min() < min_n:
        small = int(present[np.argmin(counts[present])])
        no_ci = (f"class {small} has {int(counts[small])} example(s), fewer than the {min_n} per class a bootstrap "
                 "interval needs")
    elif not np.any(a != b):
        no_ci = "no example is discordant (A and B are right and wrong on the same examples), so no resample varies"
    summary = {}
    for j, name in enumerate(SUMMARIES):
        ci = None if no_ci else _interval(low[k + j], high[k + j])
        why = no_ci or (None if ci is not None else "the bootstrap interval is undefined")
        if ci is not None and ci[1] - ci[0] < 1e-9:
            ci, why = None, "every resample gives the same difference (a zero-width interval is no interval)"
        summary[name] = {"a": float(sa[j]), "b": float(sb[j]), "diff": float(point[k + j]), "ci": ci, "why": why}
    return {"diff": diff, "diff_ci": diff_ci, "summary": summary, "a_error": a_err, "b_error": b_err,
            "n": counts, "n_boot": n_boot, "level": level, "method": method, "seed": seed, "no_ci": no_ci}


def _interval(low: float, high: float) -> list[float] | None:
    return [float(low), float(high)] if np.isfinite(low) and np.isfinite(high) else None


def significant(ci: list[float] | None) -> bool | None:
    """Whether an interval of a difference excludes 0 (None: no interval). Bounds within 1e-9 of 0 (rounding of
    percentages) count as 0."""
    return None if ci is None else bool(ci[0] > 1e-9 or ci[1] < -1e-9)


def per_class_tests(y, a_wrong, b_wrong, num_classes: int) -> dict[str, np.ndarray]:
    """Exact McNemar per class and Holm's adjustment over the classes with examples: arrays ``a_only``,
    ``b_only``, ``p``, ``p_holm`` (NaN for a class without examples)."""
    y, a, b = _as_arrays(y, a_wrong, b_wrong)
    out = {k: np.full(num_classes, np.nan) for k in ("a_only", "b_only", "p")}
    for c in range(num_classes):
        mask = y == c
        if mask.any():
            t = mcnemar_exact(a[mask], b[mask])
            for key in out:
                out[key][c] = t[key]
    out["p_holm"] = holm(out["p"])
    return out


def seed_spread(values_a, values_b, level: float = 0.95) -> dict[str, Any]:
    """Between-seed spread of one statistic: per side the seeds' ``values``, ``mean``, ``sd`` (ddof 1; None with
    one seed) and a t interval of the mean; and B - A: difference of means with Welch's t interval (None unless
    both sides have >= 2 seeds)."""
    from scipy import stats

    def side(values) -> dict[str, Any]:
        v = np.asarray(values, dtype=np.float64)
        out: dict[str, Any] = {"values": v.tolist(), "mean": float(v.mean()), "sd": None, "ci": None}
        if v.size >= 2:
            sd = float(v.std(ddof=1))
            half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * sd / math.sqrt(v.size))
            out.update(sd=sd, ci=[out["mean"] - half, out["mean"] + half])
        return out

    a, b = side(values_a), side(values_b)
    diff: dict[str, Any] = {"diff": b["mean"] - a["mean"], "ci": None}
    na, nb = len(a["values"]), len(b["values"])
    if na >= 2 and nb >= 2:
        va, vb = a["sd"] ** 2 / na, b["sd"] ** 2 / nb
        se = math.sqrt(va + vb)
        if se > 0:
            dof = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
            half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
        else:
            half = 0.0
        diff["ci"] = [diff["diff"] - half, diff["diff"] + half]
    return {"a": a, "b": b, **diff}


__all__ = ["METHODS", "MIN_BOOTSTRAP_N", "SUMMARIES", "class_errors", "holm", "mcnemar_exact", "newcombe_paired",
           "paired_bootstrap", "per_class_intervals", "per_class_tests", "seed_spread", "significant", "summaries",
           "wilson"]
