"""Per-class 95 % confidence intervals of an error rate: the Wilson score interval of a binomial proportion.

A class's error is ``m / n`` (m mistakes among its n examples); the Wilson interval stays inside [0, 100] and is
not degenerate at 0 or 100 % (the normal "Wald" interval is [0, 0] there), which matters at the small per-class n
of a fast run or an AutoAttack subset (12 per class in the demo). numpy only."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # two-sided 95 %


def wilson_interval(error_pct: float | None, n: int | None, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval (in %) of an error of ``error_pct`` % measured on ``n`` examples; None when the
    error or n is unknown or n is 0."""
    if error_pct is None or n is None or n <= 0 or (isinstance(error_pct, float) and math.isnan(error_pct)):
        return None
    p = min(max(float(error_pct) / 100.0, 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if p == 0.0 else max(0.0, (centre - half) * 100.0)  # exact ends (no 1e-15 from rounding)
    high = 100.0 if p == 1.0 else min(100.0, (centre + half) * 100.0)
    return low, high


def wilson_intervals(errors: Sequence[float | None], counts: Sequence[int | None] | None
                     ) -> list[tuple[float, float] | None]:
    """:func:`wilson_interval` for every class (None where the class's n is unknown)."""
    counts = list(counts) if counts is not None else [None] * len(errors)
    return [wilson_interval(e, n) for e, n in zip(errors, counts)]


__all__ = ["Z95", "wilson_interval", "wilson_intervals"]
