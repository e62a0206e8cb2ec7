"""The two-level (hierarchical) bootstrap of a study: seeds, then examples within class.

A study scores S trained models (seeds) per arm on one test set of N labelled examples. Two sources of chance
move its numbers: which models training happened to produce (seed variance) and which test examples were drawn
(example variance). One bootstrap replicate redraws both:

1. per arm, S seeds with replacement from the arm's S seeds (independently per arm: seeds of different arms are
   independent trainings);
2. once for all arms, each class's n_c examples with replacement from that class's examples (stratified, so
   every replicate keeps the class sizes; shared by every arm and seed, so the arms stay paired over examples,
   as in ``rbla compare``'s paired bootstrap).

Seeds and examples are crossed (every model sees every example), so this is McCullagh's (2000) "pigeonhole"
bootstrap of a two-way array: no bootstrap of a crossed design reproduces its variance exactly, and resampling
both factors counts the seed x example interaction more than once, so the variance estimate errs on the large
side (conservative intervals; McCullagh 2000, Owen 2007). The tests check that the 95 % interval of the mean-error
difference covers a planted effect in at least 90 of 100 synthetic studies.

Statistics per arm (errors in %, :data:`STATISTICS`, computed by ``stats.paired.summaries``): ``mean`` (the
class mean error), ``sd`` (the population SD of the per-class errors, ``ddof=0``, as everywhere in the project)
and ``worst`` (the worst class's error). ``estimand`` says what they describe:

- ``per_model`` (default): each seed's statistic, averaged over the seeds: the class SD / worst class of *one*
  model trained with the method (the paper's quantity; it does not depend on how many seeds were run);
- ``pooled``: the statistic of the per-class errors averaged over seeds: the class SD of the average model (it
  shrinks as seeds are added, because seed noise averages out of the class errors).

For ``mean`` both are the same. SD and worst class are biased upward by the noise in each class's error (fewer
examples per class: more bias); the difference of two arms with the same number of examples and seeds largely
cancels it, which is why the study's endpoints are differences.

References: B. Efron and R. Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13 and 16 (percentile
interval, the test it inverts); A. C. Davison and D. V. Hinkley, *Bootstrap Methods and their Application* (1997),
sec. 3.8 (hierarchical data); P. McCullagh, "Resampling and exchangeable arrays", Bernoulli 6 (2000); A. B. Owen,
"The pigeonhole bootstrap", Ann. Appl. Stat. 1 (2007).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from .outcomes import ArmOutcomes, arm_outcomes, same_examples
from .paired import summaries

STATISTICS = ("mean", "sd", "worst")  # the rows of stats.paired.summaries
ESTIMANDS = ("per_model", "pooled")
METHODS = ("percentile", "basic", "bc")
CHUNK_ELEMENTS = 20_000_000  # floats per block of replicates (memory bound of the vectorised resampling)


@dataclass(frozen=True)
class BootstrapDraws:
    """Every arm's statistics on the data (``point``: arm -> (3,) = mean, sd, worst) and in each of ``n_boot``
    replicates (``draws``: arm -> (n_boot, 3)); replicate b of every arm used the same example resample."""

    arms: tuple[str, ...]
    point: Mapping[str, np.ndarray]
    draws: Mapping[str, np.ndarray]
    n_seeds: Mapping[str, int]
    n_examples: int
    num_classes: int
    n_boot: int
    seed: int
    estimand: str

    def statistic(self, arm: str, name: str) -> tuple[float, np.ndarray]:
        """``(value on the data, its n_boot replicates)`` of one statistic (``mean``, ``sd``, ``worst``)."""
        if arm not in self.point:
            raise UserError(f"no bootstrap draws of arm {arm!r}: it has {list(self.arms)}")
        j = _stat_index(name)
        return float(self.point[arm][j]), self.draws[arm][:, j]


def _stat_index(name: str) -> int:
    if name not in STATISTICS:
        raise UserError(f"unknown statistic {name!r}: use one of {', '.join(STATISTICS)}")
    return STATISTICS.index(name)


def as_arms(data: Any, arms: Sequence[str] | None = None) -> list[ArmOutcomes]:
    """The chosen arms (all, sorted, when None) of an outcome table or of a mapping arm -> ArmOutcomes."""
    if isinstance(data, Mapping):
        names = list(data) if arms is None else list(arms)
        missing = [a for a in names if a not in data]
        if missing:
            raise UserError(f"no outcomes for arms {missing}: there are {list(data)}")
        return [data[a] for a in names]
    names = sorted(data["arm"].unique().tolist()) if arms is None else list(arms)
    return [arm_outcomes(data, a) for a in names]


def class_errors_per_seed(arm: ArmOutcomes, num_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-class error (%) of each seed, shape (S, K), or with example ``weights`` (B, N) (how often each example
    is drawn) shape (B, S, K); NaN for a class without examples."""
    onehot = np.zeros((arm.y.size, num_classes))
    onehot[np.arange(arm.y.size), arm.y] = 1.0
    wrong = arm.wrong.astype(np.float64)
    if weights is None:
        counts = onehot.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * (wrong @ onehot) / counts
    counts = weights @ onehot  # (B, K): equal to the class sizes (stratified resampling)
    s, n = wrong.shape
    out = np.empty((weights.shape[0], s, num_classes))
    step = max(1, CHUNK_ELEMENTS // max(1, s * n))
    for lo in range(0, weights.shape[0], step):
        w = weights[lo:lo + step]
        out[lo:lo + step] = ((wrong[None] * w[:, None, :]).reshape(-1, n) @ onehot).reshape(len(w), s, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * out / counts[:, None, :]


def _statistics(errors: np.ndarray, estimand: str) -> np.ndarray:
    """(..., S, K) per-seed class errors -> (..., 3) mean, sd, worst for ``estimand``."""
    import warnings

    with warnings.catch_warnings():  # an empty class (NaN) only
        warnings.simplefilter("ignore", RuntimeWarning)
        if estimand == "per_model":
            stats = summaries(errors).mean(axis=-1)  # (3, ..., S) -> (3, ...)
        else:
            stats = summaries(np.nanmean(errors, axis=-2))
    return np.moveaxis(stats, 0, -1)


def example_weights(y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) draw counts of a stratified resample: each class's n_c examples drawn n_c times with
    replacement, independently per replicate."""
    weights = np.zeros((n_boot, y.size))
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        n = members.size
        drawn = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
        weights[:, members] = np.bincount(drawn.ravel(), minlength=n_boot * n).reshape(n_boot, n)
    return weights


def _arm_rng(seed: int, arm: str) -> np.random.Generator:
    """Each arm's own seed stream (its seed resamples do not depend on which other arms are bootstrapped)."""
    return np.random.default_rng([int(seed), zlib.crc32(arm.encode())])


def bootstrap_draws(data: Any, arms: Sequence[str] | None = None, *, n_boot: int = 2000, seed: int = 0,
                    estimand: str = "per_model", num_classes: int | None = None, resample_seeds: bool = True,
                    resample_examples: bool = True, expand_seeds: bool = True) -> BootstrapDraws:
    """The two-level bootstrap of ``arms`` (all of them when None) of ``data``: an outcome table
    (:mod:`.outcomes`) or a mapping arm -> :class:`~.outcomes.ArmOutcomes`. Every arm must be scored on the same
    examples. ``resample_seeds`` / ``resample_examples`` False switch one level off (the power calculation's
    variance components). Deterministic in ``seed``; an arm's draws do not depend on the other arms chosen."""
    if estimand not in ESTIMANDS:
        raise UserError(f"unknown estimand {estimand!r}: use one of {', '.join(ESTIMANDS)}")
    if n_boot < 1:
        raise UserError(f"n_boot must be >= 1, got {n_boot}")
    chosen = as_arms(data, arms)
    if not chosen:
        raise UserError("no arms to bootstrap")
    _, y = same_examples(chosen)
    k = int(num_classes if num_classes is not None else y.max() + 1)
    if y.size and int(y.max()) >= k:
        raise UserError(f"the examples have class {int(y.max())} but num_classes is {k}")
    rng = np.random.default_rng(int(seed))
    weights = example_weights(y, n_boot, rng) if resample_examples else np.ones((n_boot, y.size))
    point, draws = {}, {}
    for arm in chosen:
        point[arm.arm] = _statistics(class_errors_per_seed(arm, k), estimand)
        errors = resampled_class_errors(arm, k, weights, seed, resample_seeds=resample_seeds,
                                        resample_examples=resample_examples, expand_seeds=expand_seeds)
        draws[arm.arm] = _statistics(errors, estimand)
    return BootstrapDraws(tuple(a.arm for a in chosen), point, draws, {a.arm: a.num_seeds for a in chosen},
                          int(y.size), k, int(n_boot), int(seed), estimand)


def resampled_class_errors(arm: ArmOutcomes, num_classes: int, weights: np.ndarray, seed: int, *,
                           resample_seeds: bool = True, resample_examples: bool = True,
                           expand_seeds: bool = True) -> np.ndarray:
    """(B, S, K): the per-seed class errors (%) of one arm in each replicate of the two-level bootstrap: the
    examples drawn as ``weights`` (B, N) say (shared by every arm), then the arm's seeds (spread about their mean by
    sqrt(S/(S-1)) with ``expand_seeds``, drawn from the arm's own stream)."""
    n_boot = weights.shape[0]
    if resample_examples:
        errors = class_errors_per_seed(arm, num_classes, weights)
    else:
        base = class_errors_per_seed(arm, num_classes)
        errors = np.broadcast_to(base, (n_boot, *base.shape))
    if resample_seeds and expand_seeds and arm.num_seeds > 1:
        centre = errors.mean(axis=1, keepdims=True)  # each seed's deviation from the seeds' mean, widened
        errors = centre + np.sqrt(arm.num_seeds / (arm.num_seeds - 1)) * (errors - centre)
    if resample_seeds:
        pick = _arm_rng(seed, arm.arm).integers(0, arm.num_seeds, size=(n_boot, arm.num_seeds))
        errors = errors[np.arange(n_boot)[:, None], pick]
    return errors


def class_difference(data: Any, arm_a: str, arm_b: str, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                     method: str = "percentile", num_classes: int | None = None) -> dict[str, Any]:
    """Per class, B - A of the seed-averaged class error (percentage points) with its interval from the same
    replicates as :func:`bootstrap_draws` (same ``seed``: seeds per arm, then the shared example resample):
    ``{"a_error", "b_error", "diff", "ci"}`` (per class; NaN / None for a class without examples), ``n``
    (examples per class)."""
    arms = as_arms(data, [arm_a, arm_b])
    _, y = same_examples(arms)
    k = int(num_classes if num_classes is not None else y.max() + 1)
    weights = example_weights(y, n_boot, np.random.default_rng(int(seed)))
    mean = [np.nanmean(class_errors_per_seed(a, k), axis=0) for a in arms]
    reps = [np.nanmean(resampled_class_errors(a, k, weights, seed), axis=1) for a in arms]  # (B, K) each
    n = np.bincount(y, minlength=k)[:k]
    ci: list[list[float] | None] = []
    for c in range(k):
        if n[c] == 0:
            ci.append(None)
            continue
        ci.append(interval(float(mean[1][c] - mean[0][c]), reps[1][:, c] - reps[0][:, c], level, method)[0])
    return {"a_error": mean[0], "b_error": mean[1], "diff": mean[1] - mean[0], "ci": ci, "n": n}


def interval(estimate: float, replicates: np.ndarray, level: float = 0.95, method: str = "percentile"
             ) -> tuple[list[float] | None, float | None]:
    """``([low, high], p)``: the two-sided ``level`` interval of a statistic from its bootstrap ``replicates``
    and the two-sided p-value of "the statistic is 0" that the same interval inverts (the interval excludes 0
    about when p < 1 - level; Efron & Tibshirani 1993, sec. 16.4). Methods:

    - ``percentile``: the replicates' quantiles; p = ``2 min(#(t* <= 0) + 1, #(t* >= 0) + 1) / (B + 1)``;
    - ``basic``: the quantiles reflected about the estimate, ``[2 t - q_hi, 2 t - q_lo]``;
    - ``bc``: the bias-corrected percentile interval (Efron 1987; BCa without the acceleration, which would need a
      jackknife the two-level resampling has no clear form for): quantiles at ``Phi(2 z0 + z_q)``, ``z0 =
      Phi^-1(share of replicates below the estimate)``; it corrects the median bias of statistics such as the
      class SD and the worst class, which resampling pushes up.

    NaN replicates (a statistic undefined in a resample) are dropped; None when none is left."""
    from scipy.stats import norm

    if method not in METHODS:
        raise UserError(f"unknown interval method {method!r}: use one of {', '.join(METHODS)}")
    if not 0.5 <= level < 1:
        raise UserError(f"level must be in [0.5, 1), e.g. 0.95, got {level!r}")
    t = np.asarray(replicates, dtype=np.float64)
    t = t[np.isfinite(t)]
    if t.size == 0 or not np.isfinite(estimate):
        return None, None
    q = np.array([(1 - level) / 2, (1 + level) / 2])
    if method == "bc":
        below = (np.sum(t < estimate) + 0.5 * np.sum(t == estimate) + 0.5) / (t.size + 1)
        z0 = float(norm.ppf(below))
        low, high = np.quantile(t, norm.cdf(2 * z0 + norm.ppf(q)))
        at_zero = (np.sum(t <= 0) + 0.5) / (t.size + 1)  # the nominal quantile 0 sits at, inverted
        p = float(min(1.0, 2 * norm.cdf(-abs(float(norm.ppf(at_zero)) - 2 * z0))))
        return [float(low), float(high)], p
    if method == "basic":
        t = 2.0 * estimate - t
    low, high = np.quantile(t, q)
    p = min(1.0, 2.0 * (min(np.sum(t <= 0), np.sum(t >= 0)) + 1) / (t.size + 1))
    return [float(low), float(high)], float(p)


def arm_summary(draws: BootstrapDraws, arm: str, level: float = 0.95, method: str = "percentile"
                ) -> dict[str, dict[str, Any]]:
    """One arm's statistics with their intervals: ``{stat: {"estimate", "ci", "se"}}``."""
    out = {}
    for name in STATISTICS:
        value, reps = draws.statistic(arm, name)
        ci, _ = interval(value, reps, level, method)
        out[name] = {"estimate": value, "ci": ci, "se": float(np.nanstd(reps, ddof=1)) if reps.size > 1 else None}
    return out


def difference(draws: BootstrapDraws, arm_a: str, arm_b: str, level: float = 0.95,
               method: str = "percentile") -> dict[str, Any]:
    """B - A of each statistic (percentage points; negative: B has the lower error / SD / worst class), from the
    same replicates: ``{stat: {"a", "b", "diff", "ci", "p", "se"}}`` plus ``n_seeds``, ``n_examples``,
    ``n_boot``, ``level``, ``method``, ``estimand`` and ``notes`` (e.g. an arm with one seed: its seed variance
    cannot be estimated, so its interval has the example variance only)."""
    out: dict[str, Any] = {}
    for name in STATISTICS:
        a, ra = draws.statistic(arm_a, name)
        b, rb = draws.statistic(arm_b, name)
        ci, p = interval(b - a, rb - ra, level, method)
        se = float(np.nanstd(rb - ra, ddof=1)) if ra.size > 1 else None
        out[name] = {"a": a, "b": b, "diff": b - a, "ci": ci, "p": p, "se": se}
    notes = [f"arm {arm!r} has one seed: its seed-to-seed variance is not in the interval"
             for arm in (arm_a, arm_b) if draws.n_seeds[arm] < 2]
    return {**out, "arms": [arm_a, arm_b], "n_seeds": {arm_a: draws.n_seeds[arm_a], arm_b: draws.n_seeds[arm_b]},
            "n_examples": draws.n_examples, "n_boot": draws.n_boot, "level": level, "method": method,
            "estimand": draws.estimand, "notes": notes}


def hierarchical_bootstrap(data: Any, arm_a: str, arm_b: str, *, n_boot: int = 2000, level: float = 0.95,
                           seed: int = 0, method: str = "percentile", estimand: str = "per_model",
                           num_classes: int | None = None) -> dict[str, Any]:
    """:func:`difference` of arms A and B from :func:`bootstrap_draws` of those two arms."""
    draws = bootstrap_draws(data, [arm_a, arm_b], n_boot=n_boot, seed=seed, estimand=estimand,
                            num_classes=num_classes)
    return difference(draws, arm_a, arm_b, level, method)


def per_seed_statistics(arm: ArmOutcomes, num_classes: int) -> np.ndarray:
    """(S, 3): each seed's class mean error, population class SD and worst-class error (%) on the test set."""
    return np.moveaxis(summaries(class_errors_per_seed(arm, num_classes)), 0, -1)


__all__ = ["CHUNK_ELEMENTS", "ESTIMANDS", "METHODS", "STATISTICS", "BootstrapDraws", "arm_summary", "as_arms",
           "bootstrap_draws", "class_difference", "class_errors_per_seed", "difference", "example_weights",
           "hierarchical_bootstrap", "interval", "per_seed_statistics", "resampled_class_errors"]
