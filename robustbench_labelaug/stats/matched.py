"""Matched robustness: a method's class-wise numbers at the *same* mean robust error as the reference (Adv).

Methods trade mean robustness for class-wise balance through a knob (TRADES' beta, Adv+'s delta, FRL's tau). Two
methods compared at their own defaults may differ in both at once, and a lower worst-class error bought with a
higher mean error is not a gain. So each method is read where its knob sweep crosses the reference's mean robust
error: its worst-class error (or class SD, or any statistic) interpolated linearly along the sweep's points,
ordered by mean robust error, at the reference's mean error.

- :func:`interpolate_at`: that interpolation on points; a target outside the sweep's range is refused with one
  line (:class:`UserError`), never extrapolated.
- :func:`matched_value`: the value with a bootstrap interval: the same interpolation in every replicate of the
  sweep's points and of the target (the replicates of one two-level bootstrap, :func:`.bootstrap.bootstrap_draws`,
  so the sweep's arms and the reference share their example resamples); the difference to the reference's own
  value, its interval and p. A replicate whose target falls outside its sweep cannot be interpolated: the share of
  such replicates is reported, and where it exceeds half of ``1 - level`` the interval would rest on extrapolated
  tails, so it is None with a note.
- :func:`matched_robustness`: the same from a :class:`~.bootstrap.BootstrapDraws` by arm names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import UserError
from .bootstrap import BootstrapDraws, interval


def _interp(x: np.ndarray, y: np.ndarray, target: float) -> float:
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    if not xs[0] <= target <= xs[-1]:
        return float("nan")
    return float(np.interp(target, xs, ys))


def interpolate_at(x: Sequence[float], y: Sequence[float], target: float, *, what: str = "the target") -> float:
    """``y`` interpolated linearly at ``x = target`` along the points ordered by ``x`` (>= 2 points).
    :class:`UserError` when ``target`` lies outside the points' range of ``x`` (no extrapolation)."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.size < 2 or xs.size != ys.size:
        raise UserError(f"a knob sweep needs >= 2 points with one x and one y each, got {xs.size} x and "
                        f"{ys.size} y: add arms to the sweep")
    if not np.all(np.isfinite(xs)) or not np.all(np.isfinite(ys)):
        raise UserError("the knob sweep has a missing (NaN) point: evaluate every arm of the sweep")
    value = _interp(xs, ys, float(target))
    if value != value:
        raise UserError(f"{what} {float(target):.2f} lies outside the sweep's range [{xs.min():.2f}, "
                        f"{xs.max():.2f}]: extend the knob sweep to cover it (matched robustness is not "
                        "extrapolated)")
    return value


def matched_value(x: Sequence[float], y: Sequence[float], target: float, *, x_draws: np.ndarray | None = None,
                  y_draws: np.ndarray | None = None, target_draws: np.ndarray | None = None,
                  reference: float | None = None, reference_draws: np.ndarray | None = None,
                  level: float = 0.95, method: str = "percentile") -> dict[str, Any]:
    """``y`` at ``x = target`` along the sweep (:func:`interpolate_at`) and, with replicates (``x_draws`` /
    ``y_draws`` of shape (B, P), ``target_draws`` (B,), from the same bootstrap), its interval; with ``reference``
    (the reference's own y, e.g. Adv's worst-class error, and ``reference_draws``) the difference value -
    reference, its interval and p. Returns ``{"target", "value", "ci", "reference", "diff", "diff_ci", "p",
    "out_of_range", "notes"}``."""
    value = interpolate_at(x, y, target, what="the target mean robust error")
    out: dict[str, Any] = {"target": float(target), "value": value, "ci": None, "reference": reference,
                           "diff": None if reference is None else value - float(reference), "diff_ci": None,
                           "p": None, "out_of_range": None, "notes": []}
    if x_draws is None or y_draws is None:
        return out
    xd, yd = np.asarray(x_draws, dtype=np.float64), np.asarray(y_draws, dtype=np.float64)
    b = xd.shape[0]
    td = np.full(b, float(target)) if target_draws is None else np.asarray(target_draws, dtype=np.float64)
    if xd.shape != yd.shape or xd.shape[1] != len(x) or td.shape != (b,):
        raise UserError(f"the replicates do not fit the sweep: x_draws {xd.shape}, y_draws {yd.shape}, "
                        f"target_draws {td.shape}, for {len(x)} points")
    reps = np.array([_interp(xd[i], yd[i], td[i]) for i in range(b)])
    outside = float(np.mean(~np.isfinite(reps)))
    out["out_of_range"] = outside
    if outside > (1 - level) / 2:
        out["notes"].append(f"in {100 * outside:.1f} % of the bootstrap replicates the target lies outside the "
                            "sweep: no interval (it would rest on extrapolation); extend the knob sweep")
        return out
    if outside > 0:
        out["notes"].append(f"{100 * outside:.1f} % of the replicates fall outside the sweep and are left out")
    out["ci"], _ = interval(value, reps, level, method)
    if reference is not None and reference_draws is not None:
        diff_reps = reps - np.asarray(reference_draws, dtype=np.float64)
        out["diff_ci"], out["p"] = interval(value - float(reference), diff_reps, level, method)
    return out


def matched_robustness(draws: BootstrapDraws, sweep: Sequence[str], reference: str, *, x: str = "mean",
                       y: str = "worst", level: float = 0.95, method: str = "percentile") -> dict[str, Any]:
    """The sweep's (arms ``sweep``, in knob order) statistic ``y`` at the reference arm's statistic ``x``
    (default: worst-class error at Adv's mean robust error) and its difference to the reference's own ``y``,
    with intervals from the same bootstrap replicates (:func:`matched_value`)."""
    xs = [draws.statistic(arm, x) for arm in sweep]
    ys = [draws.statistic(arm, y) for arm in sweep]
    target, target_draws = draws.statistic(reference, x)
    ref, ref_draws = draws.statistic(reference, y)
    out = matched_value([p for p, _ in xs], [p for p, _ in ys], target,
                        x_draws=np.stack([d for _, d in xs], axis=1), y_draws=np.stack([d for _, d in ys], axis=1),
                        target_draws=target_draws, reference=ref, reference_draws=ref_draws, level=level,
                        method=method)
    return {**out, "sweep": list(sweep), "reference_arm": reference, "x": x, "y": y, "level": level}


__all__ = ["interpolate_at", "matched_robustness", "matched_value"]
