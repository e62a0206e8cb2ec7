"""The equivalence bound: where a difference's interval includes 0, the effects the data still exclude.

"No significant difference" is not "no difference": an interval [L, U] that includes 0 also says which effects
the data are *incompatible* with, those outside [L, U]. The equivalence bound is the boundary of that region:

- ``two-sided``: ``max(|L|, |U|)``: every effect larger in magnitude than the bound lies outside the interval.
  With the interval at level 1 - 2 alpha (90 % for alpha = 0.05) it is the smallest margin at which the two
  one-sided tests (TOST) would declare the arms equivalent at level alpha (D. J. Schuirmann, J. Pharmacokinet.
  Biopharm. 15, 1987; D. Lakens, "Equivalence tests: a practical primer", Soc. Psychol. Personal. Sci. 8, 2017).
  With a 95 % interval (the study's) each side is excluded at the one-sided 2.5 % level.
- ``decrease`` / ``increase``: one side only, for a directional claim such as "B narrows the class-wise gap"
  (a *decrease* of the class SD): ``max(0, -L)`` is the largest decrease not excluded, ``max(0, U)`` the largest
  increase not excluded. "The data exclude a reduction of the class SD by more than 0.8 points" is then the
  honest reading of a non-significant result.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UserError

DIRECTIONS = ("two-sided", "decrease", "increase")


def equivalence_bound(ci: Sequence[float] | None, direction: str = "two-sided") -> float | None:
    """The bound (same units as the interval ``ci`` = ``[low, high]`` of a difference) beyond which the data
    exclude the effect (see the module docstring); None without an interval."""
    if direction not in DIRECTIONS:
        raise UserError(f"unknown direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    if ci is None:
        return None
    low, high = float(ci[0]), float(ci[1])
    if low > high:
        raise UserError(f"the interval [{low}, {high}] has its low end above its high end")
    if direction == "decrease":
        return max(0.0, -low)
    if direction == "increase":
        return max(0.0, high)
    return max(abs(low), abs(high))


def includes_zero(ci: Sequence[float] | None) -> bool | None:
    """Whether the interval includes 0 (bounds within 1e-9 of 0 count as 0), None without one."""
    return None if ci is None else bool(ci[0] <= 1e-9 and ci[1] >= -1e-9)


__all__ = ["DIRECTIONS", "equivalence_bound", "includes_zero"]
