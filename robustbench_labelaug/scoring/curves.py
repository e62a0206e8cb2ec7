"""Class-wise robustness curves, free of a single eps: pure numpy on per-example robust radii.

An example's *robust radius* is the L-inf norm of the smallest adversarial perturbation any attack of the run
found (infinity: never broken within the search; 0: misclassified clean). It is robust at eps exactly when its
radius is larger than eps (an adversarial example at distance eps lies inside the closed eps-ball). So each class's
robust accuracy at every eps follows from the radii at once, without one attack per eps:

- :func:`curve_accuracy`: per-class robust accuracy (%) at every eps of a grid, and its Wilson score interval
  (the project's one Wilson function, :func:`.intervals.wilson_interval`);
- :func:`median_radius`: each class's median radius (infinite where more than half of the class was never
  broken);
- :func:`curve_area`: the area under each class's curve on [0, eps_max], normalised by eps_max (%): the class's
  robust accuracy averaged over eps uniform on [0, eps_max], which is exactly the class's mean of
  ``min(radius, eps_max) / eps_max`` (no grid error); the worst class's area is the eps-free worst-class number;
- :func:`tighten_radii`: another attack's per-example results (e.g. AutoAttack's ``linf`` where it broke an
  example) lower the radii: an example counts as robust at eps only if no attack of the run broke it within eps;
- :func:`robustness_curves`: all of these as one JSON-able block (what the ``robustness_curve`` evaluator
  stores in its result's ``details["curve"]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .intervals import wilson_interval


def eps_grid(eps_max: float, points: int) -> np.ndarray:
    """``points`` values evenly spaced on [0, eps_max] (both ends included)."""
    if not eps_max > 0 or points < 2:
        raise ValueError(f"eps_max must be > 0 and points >= 2, got {eps_max!r} and {points!r}")
    return np.linspace(0.0, float(eps_max), int(points))


def _arrays(y_true, radius) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    r = np.asarray(radius, dtype=np.float64).ravel()
    if y.shape != r.shape:
        raise ValueError(f"y_true and radius differ in length: {y.size} vs {r.size}")
    if np.isnan(r).any() or (r < 0).any():
        raise ValueError("a robust radius is NaN or negative: radii are >= 0 (inf: never broken)")
    return y, r


def class_counts(y_true, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(y_true, dtype=np.int64).ravel(), minlength=num_classes)[:num_classes]


def curve_accuracy(y_true, radius, num_classes: int, eps) -> tuple[np.ndarray, np.ndarray]:
    """``(accuracy, n)``: per-class robust accuracy (%) at each eps, shape (K, len(eps)) (NaN for a class without
    examples), and the number of examples of each class."""
    y, r = _arrays(y_true, radius)
    eps = np.asarray(eps, dtype=np.float64).ravel()
    n = class_counts(y, num_classes)
    robust = (r[:, None] > eps[None, :]).astype(np.float64)  # (N, G)
    onehot = np.zeros((num_classes, y.size))
    onehot[y, np.arange(y.size)] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * (onehot @ robust) / n[:, None], n


def curve_intervals(accuracy: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals (%) of each accuracy in ``accuracy`` (K, G) measured on ``n`` (K,) examples:
    ``(low, high)``, NaN where a class has no examples."""
    low, high = np.full(accuracy.shape, np.nan), np.full(accuracy.shape, np.nan)
    for c in range(accuracy.shape[0]):
        for g in range(accuracy.shape[1]):
            ci = wilson_interval((100.0 - accuracy[c, g]) * int(n[c]) / 100.0, int(n[c]), level)
            if ci is not None:  # the interval of the error, turned into one of the accuracy
                low[c, g], high[c, g] = 100.0 - ci[1], 100.0 - ci[0]
    return low, high


def median_radius(y_true, radius, num_classes: int) -> np.ndarray:
    """Each class's median robust radius (inf where more than half of the class was never broken, NaN for a class
    without examples)."""
    y, r = _arrays(y_true, radius)
    return np.array([float(np.median(r[y == c])) if np.any(y == c) else np.nan for c in range(num_classes)])


def curve_area(y_true, radius, num_classes: int, eps_max: float) -> np.ndarray:
    """Area under each class's robust-accuracy curve on [0, eps_max] divided by eps_max (%): the class mean of
    ``min(radius, eps_max) / eps_max`` (exact; NaN for a class without examples)."""
    y, r = _arrays(y_true, radius)
    if not eps_max > 0:
        raise ValueError(f"eps_max must be > 0, got {eps_max!r}")
    clipped = np.minimum(r, float(eps_max)) / float(eps_max)
    n = class_counts(y, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.bincount(y, weights=clipped, minlength=num_classes)[:num_classes] / n


def tighten_radii(index, radius, other_index, other_broken, other_linf) -> tuple[np.ndarray, np.ndarray]:
    """``(radius, tightened)``: ``radius`` lowered to another attack's L-inf distance for the examples it broke
    (``other_broken``; matched by example ``index``, examples it did not attack are left as they are), and which
    examples that lowered. The other attack's distances are what it verified (a misclassified image at that
    distance), so the minimum is still an upper bound on each true minimal radius."""
    index = np.asarray(index, dtype=np.int64).ravel()
    r = np.asarray(radius, dtype=np.float64).ravel().copy()
    o_index = np.asarray(other_index, dtype=np.int64).ravel()
    broken = np.asarray(other_broken, dtype=bool).ravel()
    linf = np.asarray(other_linf, dtype=np.float64).ravel()
    if not (o_index.size == broken.size == linf.size):
        raise ValueError("other_index, other_broken and other_linf must have one entry per example")
    pos = {int(i): p for p, i in enumerate(index.tolist())}
    tightened = np.zeros(r.size, dtype=bool)
    for i, b, d in zip(o_index.tolist(), broken.tolist(), linf.tolist()):
        p = pos.get(int(i))
        if b and p is not None and d < r[p]:
            r[p], tightened[p] = d, True
    return r, tightened


def robustness_curves(y_true, radius, num_classes: int, eps_max: float, points: int = 41,
                      level: float = 0.95) -> dict[str, Any]:
    """The curve block: ``eps`` (the grid), per class ``accuracy`` / ``ci_low`` / ``ci_high`` (K x G, %),
    ``n``, ``median_radius`` (inf: more than half never broken), ``area`` (%), and the summary ``worst_area``,
    ``worst_area_class``, ``mean_area``, ``worst_median_radius`` (the smallest class median) and
    ``worst_median_radius_class``, ``eps_max``."""
    y, r = _arrays(y_true, radius)
    eps = eps_grid(eps_max, points)
    acc, n = curve_accuracy(y, r, num_classes, eps)
    low, high = curve_intervals(acc, n, level)
    med = median_radius(y, r, num_classes)
    area = curve_area(y, r, num_classes, eps_max)
    scored = np.flatnonzero(n > 0)
    if scored.size == 0:
        raise ValueError("no class has any example")
    worst = int(scored[np.argmin(area[scored])])
    weakest = int(scored[np.argmin(med[scored])])
    return {"eps": eps, "eps_max": float(eps_max), "accuracy": acc, "ci_low": low, "ci_high": high, "n": n,
            "median_radius": med, "area": area, "worst_area": float(area[worst]), "worst_area_class": worst,
            "mean_area": float(np.mean(area[scored])), "worst_median_radius": float(med[weakest]),
            "worst_median_radius_class": weakest}


__all__ = ["class_counts", "curve_accuracy", "curve_area", "curve_intervals", "eps_grid", "median_radius",
           "robustness_curves", "tighten_radii"]
