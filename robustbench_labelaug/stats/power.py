"""Power of a study's comparison from its measured variance, and the seeds it needs.

A statistic (class mean error, class SD or worst-class error; the ``per_model`` estimand of :mod:`.bootstrap`)
of one trained model on the fixed test set is ``T_s = mu + a_s + e_s``: ``a_s`` the model's own deviation
(training seed, variance ``sigma_a^2``) and ``e_s`` its own test-set noise (which examples it happens to get
right, variance ``sigma_e^2``; the seed x example interaction); every model also shares the test set's deviation
from the population of examples (variance ``tau^2`` for a difference of arms, mostly cancelling in a paired
difference). Measured here, per statistic, in (percentage points)^2 (:class:`VarianceComponents`):

- ``seed_var_a`` / ``seed_var_b``: the variance across an arm's seeds of ``T_s`` on the test set
  (``sigma_a^2 + sigma_e^2``);
- ``example_shared`` (``tau^2``) and ``example_interaction`` (``sigma_e^2`` of A plus B): from the example-level
  bootstrap with the seeds fixed (:func:`.bootstrap.bootstrap_draws`, ``resample_seeds=False``): ``v(S)``, the
  variance of the difference of the S-seed means, and ``v(1)``, of one seed per arm, fitted to
  ``v(S) = shared + interaction / S``.

The two-level bootstrap resamples the examples *and* the seeds, so each model's own test-set noise enters its
variance three times over (once in the seeds' spread, once in each example resample, once more as the resampled
noise is carried by the seed resample): its variance of the difference with S seeds per arm is about

    SE(S)^2 = (seed_var_a + seed_var_b) / S + example_shared + 2 example_interaction / S

while the sampling variance itself is ``(seed_var_a + seed_var_b) / S + example_shared`` (the pigeonhole
bootstrap's known excess, McCullagh 2000, Owen 2007: its intervals err on the wide side). The power here is that
of the test the study runs (:func:`.bootstrap.difference`, its interval excluding 0), so it uses the first; a test
that counted the noise once would have more power.

Power of the two-sided level-``alpha`` test of "no difference" against a true difference ``effect`` (normal
approximation, e.g. J. Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., 1988, ch. 2):

    power = Phi(|effect| / SE - z) + Phi(-|effect| / SE - z),   z = Phi^-1(1 - alpha / 2)

:func:`seeds_for_power` is the smallest S per arm reaching a target power; None where even infinitely many seeds
would not (``example_shared`` alone is too large: the test set is too small for that effect). The tests check the
formula against a Monte-Carlo simulation of the same model, each synthetic study tested by the bootstrap (the
class mean error; for the class SD and the worst class the resampled statistic is also biased upward, and the
percentile test has less power than this formula says: there it is an upper bound, and the seeds it asks for a
lower bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from .bootstrap import (
    STATISTICS,
    as_arms,
    bootstrap_draws,
    class_errors_per_seed,
    example_weights,
    per_seed_statistics,
)
from .outcomes import same_examples
from .paired import summaries

INTERACTION_COUNT = 2  # the bootstrap's extra counts of each model's own test-set noise (module docstring)


@dataclass(frozen=True)
class VarianceComponents:
    """The variance of one statistic's B - A difference, in (percentage points)^2 (see the module docstring)."""

    statistic: str
    seed_var_a: float
    seed_var_b: float
    example_shared: float = 0.0
    example_interaction: float = 0.0
    measured_seeds: tuple[int, int] | None = None  # (S_a, S_b) of the data they were measured on
    notes: tuple[str, ...] = ()

    @classmethod
    def from_sds(cls, seed_sd_a: float, seed_sd_b: float | None = None, example_sd: float = 0.0,
                 statistic: str = "sd") -> VarianceComponents:
        """From SDs in percentage points: seed SD of each arm (B's defaults to A's) and the example-level SD of the
        difference (the part more seeds do not remove)."""
        b = seed_sd_a if seed_sd_b is None else seed_sd_b
        return cls(statistic, float(seed_sd_a) ** 2, float(b) ** 2, float(example_sd) ** 2)

    def se(self, n_seeds: int | tuple[int, int]) -> float:
        """The two-level bootstrap's SE of the difference with ``n_seeds`` per arm (or ``(S_a, S_b)``; see the
        module docstring)."""
        sa, sb = (n_seeds, n_seeds) if isinstance(n_seeds, (int, np.integer)) else n_seeds
        if min(sa, sb) < 1:
            raise UserError(f"the number of seeds must be >= 1, got {n_seeds}")
        var = self.seed_var_a / sa + self.seed_var_b / sb + self.example_shared \
            + INTERACTION_COUNT * self.example_interaction / min(sa, sb)
        return math.sqrt(max(var, 0.0))


def power(effect: float, components: VarianceComponents, n_seeds: int | tuple[int, int],
          alpha: float = 0.05) -> float:
    """Power of the two-sided level-``alpha`` test with ``n_seeds`` per arm against a true difference ``effect``
    (percentage points, the statistic's units)."""
    _check_alpha(alpha)
    se = components.se(n_seeds)
    if se == 0:
        return 1.0 if effect != 0 else alpha
    from scipy.stats import norm  # deferred: scipy (scipy.stats takes ~1 s; rbla compare --help needs none)

    z = norm.ppf(1 - alpha / 2)
    return float(norm.cdf(abs(effect) / se - z) + norm.cdf(-abs(effect) / se - z))


def seeds_for_power(effect: float, components: VarianceComponents, alpha: float = 0.05, target: float = 0.8,
                    max_seeds: int = 100_000) -> int | None:
    """The smallest number of seeds per arm with :func:`power` >= ``target``; None when no number of seeds up to
    ``max_seeds`` reaches it (e.g. the test set's own variance ``example_shared`` is too large for ``effect``)."""
    _check_alpha(alpha)
    if not 0 < target < 1:
        raise UserError(f"target power must be in (0, 1), e.g. 0.8, got {target!r}")
    if effect == 0:
        return None
    if power(effect, components, max_seeds, alpha) < target:
        return None
    lo, hi = 1, max_seeds  # power rises with S: bisection
    while lo < hi:
        mid = (lo + hi) // 2
        if power(effect, components, mid, alpha) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be in (0, 1), e.g. 0.05, got {alpha!r}")


def variance_components(data: Any, arm_a: str, arm_b: str | None = None, *, statistic: str = "sd",
                        n_boot: int = 1000, seed: int = 0, num_classes: int | None = None) -> VarianceComponents:
    """The :class:`VarianceComponents` of ``statistic`` (``mean``, ``sd``, ``worst``; the ``per_model``
    estimand) measured on an outcome table (or arm -> ArmOutcomes).

    With ``arm_b`` None (a pilot of arm A alone), B's seed variance is taken as A's and the example parts of the
    difference as twice A's own (the two arms' positive correlation over shared examples, which shrinks a paired
    difference's variance, is then left out: an upper bound)."""
    if statistic not in STATISTICS:
        raise UserError(f"unknown statistic {statistic!r}: use one of {', '.join(STATISTICS)}")
    j = STATISTICS.index(statistic)
    arms = as_arms(data, [arm_a] if arm_b is None else [arm_a, arm_b])
    _, y = same_examples(arms)
    k = int(num_classes if num_classes is not None else y.max() + 1)
    seed_vars = []
    for arm in arms:
        values = per_seed_statistics(arm, k)[:, j]
        seed_vars.append(float(np.var(values, ddof=1)) if values.size > 1 else 0.0)
    notes = [f"arm {a.arm!r} has one seed: its seed variance is unknown (taken as 0)" for a in arms
             if a.num_seeds < 2]
    draws = bootstrap_draws({a.arm: a for a in arms}, n_boot=n_boot, seed=seed, num_classes=k,
                            resample_seeds=False)
    weights = example_weights(y, n_boot, np.random.default_rng(seed))  # the same resamples as ``draws``
    one = [_per_seed_replicates(a, k, weights)[:, :, j] for a in arms]  # (B, S) each
    if arm_b is None:
        v_s = 2.0 * float(np.var(draws.draws[arm_a][:, j], ddof=1))
        v_1 = 2.0 * float(np.mean(np.var(one[0], axis=0, ddof=1)))
        s = arms[0].num_seeds
        seed_vars.append(seed_vars[0])
        notes.append(f"arm B not measured: its seed variance is taken as {arm_a!r}'s, and the example variance of "
                     "the difference as twice one arm's (an upper bound)")
    else:
        v_s = float(np.var(draws.draws[arm_b][:, j] - draws.draws[arm_a][:, j], ddof=1))
        pairs = min(arms[0].num_seeds, arms[1].num_seeds)
        v_1 = float(np.mean(np.var(one[1][:, :pairs] - one[0][:, :pairs], axis=0, ddof=1)))
        s = pairs
    if s > 1:
        interaction = max(0.0, (v_1 - v_s) * s / (s - 1))
        shared = max(0.0, v_s - interaction / s)
    else:
        interaction, shared = 0.0, v_s
        notes.append("one seed: the test-set variance cannot be split into its shared and per-model parts "
                     "(all of it is taken as shared: more seeds are then predicted to help less than they do)")
    sizes = (arms[0].num_seeds, arms[-1].num_seeds)
    return VarianceComponents(statistic, seed_vars[0], seed_vars[1], shared, interaction, sizes, tuple(notes))


def _per_seed_replicates(arm, k: int, weights: np.ndarray) -> np.ndarray:
    """(B, S, 3): each seed's statistics in each example resample."""
    return np.moveaxis(summaries(class_errors_per_seed(arm, k, weights)), 0, -1)


def power_report(data: Any, arm_a: str, arm_b: str | None = None, *, statistic: str = "sd",
                 effect: float | None = None, relative_effect: float | None = None, alpha: float = 0.05,
                 target: float = 0.8, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Power at the measured seeds and the seeds needed for ``target`` power against an ``effect`` (percentage
    points) or a ``relative_effect`` of arm A's statistic (e.g. 0.0279: the paper's 2.79 % relative class-SD
    reduction, so ``effect`` = 0.0279 x A's class SD): ``{"effect", "alpha", "power", "n_seeds",
    "seeds_for_power", "target", "components"}``."""
    if (effect is None) == (relative_effect is None):
        raise UserError("give either effect (percentage points) or relative_effect (a fraction of arm A's value)")
    comps = variance_components(data, arm_a, arm_b, statistic=statistic, n_boot=n_boot, seed=seed)
    if effect is None:
        arms = as_arms(data, [arm_a])
        k = int(arms[0].y.max() + 1)
        baseline = float(np.mean(per_seed_statistics(arms[0], k)[:, STATISTICS.index(statistic)]))
        effect = relative_effect * baseline
    n = comps.measured_seeds
    return {"statistic": statistic, "effect": float(effect), "alpha": alpha, "n_seeds": list(n),
            "power": power(effect, comps, n, alpha), "target": target,
            "seeds_for_power": seeds_for_power(effect, comps, alpha, target),
            "components": {"seed_var_a": comps.seed_var_a, "seed_var_b": comps.seed_var_b,
                           "example_shared": comps.example_shared,
                           "example_interaction": comps.example_interaction},
            "notes": list(comps.notes)}


__all__ = ["VarianceComponents", "power", "power_report", "seeds_for_power", "variance_components"]
