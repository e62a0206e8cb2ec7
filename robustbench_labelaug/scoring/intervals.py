"""The confidence interval of an error rate: the Wilson score interval of a binomial proportion (the one used
everywhere: ``benchmark()``'s per-class frame, the leaderboard's page and figures).

A class's error is ``m / n`` (m mistakes among its n examples); the Wilson interval stays inside [0, 100] and is
not degenerate at 0 or 100 % (the normal "Wald" interval is [0, 0] there), which matters at the small per-class n
of a fast run or an AutoAttack subset (12 per class in the demo). It equals scipy's
``binomtest(m, n).proportion_ci(method="wilson")`` (no continuity correction). Where nothing was measured (n = 0,
or n or the error unknown) there is no interval: None (a table shows it as missing). Pure Python: the
leaderboard imports it without numpy or torch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

Interval = tuple[float, float]


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    return NormalDist().inv_cdf((1 + level) / 2)


def wilson_interval(errors: float | None, n: int | None, level: float = 0.95) -> Interval | None:
    """The two-sided Wilson score interval at ``level``, in percent, of an error rate of ``errors`` mistakes among
    ``n`` examples (a float count where it comes from a stored percentage); None when ``n`` is 0 or unknown or
    ``errors`` is unknown."""
    if errors is None or n is None or n <= 0 or (isinstance(errors, float) and math.isnan(errors)):
        return None
    z = _z(level)
    p = min(max(float(errors) / n, 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if p == 0.0 else max(0.0, (centre - half) * 100.0)  # exact ends (no 1e-15 from rounding)
    high = 100.0 if p == 1.0 else min(100.0, (centre + half) * 100.0)
    return low, high


def classwise_intervals(errors_pct: Sequence[float | None], counts: Sequence[int | None] | None,
                        level: float = 0.95) -> list[Interval | None]:
    """:func:`wilson_interval` of every class from a stored class-wise block: its errors in percent and its
    per-class n (None where a class's n, or all of them, are unknown)."""
    counts = list(counts) if counts is not None else [None] * len(errors_pct)
    return [None if e is None or c is None else wilson_interval(float(e) * int(c) / 100.0, int(c), level)
            for e, c in zip(errors_pct, counts)]


__all__ = ["Interval", "classwise_intervals", "wilson_interval"]
